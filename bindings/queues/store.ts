// Queue messages on SQLite (<data>/queues.sqlite, synchronous=FULL: a send that was answered
// survives kill -9). A message is leased while a consumer batch holds it (visible again if the
// node dies mid-batch), deleted when acknowledged, made visible again after its delay when
// retried, and moved to the dead-letter queue (or dropped) once its retries are spent. Queues
// belong to accounts: every row is keyed by (account, queue).
import type Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { openSqlite } from '../../src/store/open-sqlite.js';
import type { QueueContentType } from './protocol.js';

export interface StoredMessage {
  seq: number;
  id: string;
  body: Buffer;
  contentType: QueueContentType;
  attempts: number;
  created: number;
}

export interface QueueRef {
  account: string;
  queue: string;
}

export class QueueStore {
  readonly #db: Database.Database;

  constructor(file: string) {
    this.#db = openSqlite(file, 'FULL');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, queue TEXT NOT NULL, id TEXT NOT NULL,
        body BLOB NOT NULL, content_type TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, visible_at INTEGER NOT NULL, created INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS messages_visible ON messages (account, queue, visible_at);
    `);
  }

  send(ref: QueueRef, messages: { body: Buffer; contentType: QueueContentType; delayMs: number }[], now = Date.now()): string[] {
    const insert = this.#db.prepare('INSERT INTO messages (account, queue, id, body, content_type, visible_at, created) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const ids: string[] = [];
    this.#db.transaction(() => {
      for (const message of messages) {
        const id = randomUUID().replace(/-/g, '');
        insert.run(ref.account, ref.queue, id, message.body, message.contentType, now + message.delayMs, now);
        ids.push(id);
      }
    })();
    return ids;
  }

  /** Messages visible now: how many, and how long the oldest has waited (ms). */
  visible(ref: QueueRef, now = Date.now()): { count: number; oldestAgeMs: number } {
    const row = this.#db.prepare('SELECT count(*) AS n, min(visible_at) AS first FROM messages WHERE account = ? AND queue = ? AND visible_at <= ?').get(ref.account, ref.queue, now) as { n: number; first: number | null };
    return { count: row.n, oldestAgeMs: row.first === null ? 0 : now - row.first };
  }

  /** Take up to `max` visible messages for a batch, hidden for `leaseMs`, each attempt counted. */
  lease(ref: QueueRef, max: number, leaseMs: number, now = Date.now()): StoredMessage[] {
    return this.#db.transaction(() => {
      const rows = this.#db
        .prepare('SELECT seq, id, body, content_type AS contentType, attempts, created FROM messages WHERE account = ? AND queue = ? AND visible_at <= ? ORDER BY visible_at, seq LIMIT ?')
        .all(ref.account, ref.queue, now, max) as StoredMessage[];
      const take = this.#db.prepare('UPDATE messages SET visible_at = ?, attempts = attempts + 1 WHERE seq = ?');
      for (const row of rows) {
        take.run(now + leaseMs, row.seq);
        row.attempts++;
      }
      return rows;
    })();
  }

  ack(seqs: number[]): void {
    const remove = this.#db.prepare('DELETE FROM messages WHERE seq = ?');
    this.#db.transaction(() => seqs.forEach((seq) => remove.run(seq)))();
  }

  retry(seq: number, delayMs: number, now = Date.now()): void {
    this.#db.prepare('UPDATE messages SET visible_at = ? WHERE seq = ?').run(now + delayMs, seq);
  }

  /** Move a message to another queue of the same account, as new (attempts start again). */
  moveTo(seq: number, queue: string, now = Date.now()): void {
    this.#db.prepare('UPDATE messages SET queue = ?, attempts = 0, visible_at = ? WHERE seq = ?').run(queue, now, seq);
  }

  depth(ref: QueueRef): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM messages WHERE account = ? AND queue = ?').get(ref.account, ref.queue) as { n: number }).n;
  }

  /** Every (account, queue) holding messages, with its depth. */
  depths(): { account: string; queue: string; depth: number }[] {
    return this.#db.prepare('SELECT account, queue, count(*) AS depth FROM messages GROUP BY account, queue').all() as { account: string; queue: string; depth: number }[];
  }

  close(): void {
    this.#db.close();
  }
}
