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
  /** the backend's own handle for this delivery (a row number, a stream entry id) */
  handle: string;
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

/** Where messages live: SQLite (one node) or Redis Streams (nodes sharing queues). */
export interface QueueBackend {
  readonly kind: 'sqlite' | 'redis';
  send(ref: QueueRef, messages: { body: Buffer; contentType: QueueContentType; delayMs: number }[]): Promise<string[]>;
  /** messages ready for a batch now (counted up to `upTo`), and how long the oldest has waited */
  visible(ref: QueueRef, upTo: number, leaseMs: number): Promise<{ count: number; oldestAgeMs: number }>;
  /** take up to `max` for a batch: delivered to this node only, hidden for `leaseMs` */
  lease(ref: QueueRef, max: number, leaseMs: number): Promise<StoredMessage[]>;
  ack(ref: QueueRef, messages: StoredMessage[]): Promise<void>;
  retry(ref: QueueRef, message: StoredMessage, delayMs: number): Promise<void>;
  /** move to another queue of the same account, as new */
  moveTo(ref: QueueRef, message: StoredMessage, queue: string): Promise<void>;
  depth(ref: QueueRef): Promise<number>;
  depths(): Promise<{ account: string; queue: string; depth: number }[]>;
  close(): Promise<void>;
}

export class QueueStore implements QueueBackend {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;

  constructor(file: string) {
    this.#db = openSqlite(file, 'FULL');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, queue TEXT NOT NULL, id TEXT NOT NULL,
        body BLOB NOT NULL, content_type TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, visible_at INTEGER NOT NULL, created INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS messages_visible ON messages (account, queue, visible_at);
    `);
  }

  async send(ref: QueueRef, messages: { body: Buffer; contentType: QueueContentType; delayMs: number }[], now = Date.now()): Promise<string[]> {
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
  async visible(ref: QueueRef, _upTo?: number, _leaseMs?: number, now = Date.now()): Promise<{ count: number; oldestAgeMs: number }> {
    const row = this.#db.prepare('SELECT count(*) AS n, min(visible_at) AS first FROM messages WHERE account = ? AND queue = ? AND visible_at <= ?').get(ref.account, ref.queue, now) as { n: number; first: number | null };
    return { count: row.n, oldestAgeMs: row.first === null ? 0 : now - row.first };
  }

  /** Take up to `max` visible messages for a batch, hidden for `leaseMs`, each attempt counted. */
  async lease(ref: QueueRef, max: number, leaseMs: number, now = Date.now()): Promise<StoredMessage[]> {
    return this.#db.transaction(() => {
      const rows = this.#db
        .prepare("SELECT CAST(seq AS TEXT) AS handle, id, body, content_type AS contentType, attempts, created FROM messages WHERE account = ? AND queue = ? AND visible_at <= ? ORDER BY visible_at, seq LIMIT ?")
        .all(ref.account, ref.queue, now, max) as StoredMessage[];
      const take = this.#db.prepare('UPDATE messages SET visible_at = ?, attempts = attempts + 1 WHERE seq = ?');
      for (const row of rows) {
        take.run(now + leaseMs, Number(row.handle));
        row.attempts++;
      }
      return rows;
    })();
  }

  async ack(_ref: QueueRef, messages: StoredMessage[]): Promise<void> {
    const remove = this.#db.prepare('DELETE FROM messages WHERE seq = ?');
    this.#db.transaction(() => messages.forEach((m) => remove.run(Number(m.handle))))();
  }

  async retry(_ref: QueueRef, message: StoredMessage, delayMs: number, now = Date.now()): Promise<void> {
    this.#db.prepare('UPDATE messages SET visible_at = ? WHERE seq = ?').run(now + delayMs, Number(message.handle));
  }

  /** Move a message to another queue of the same account, as new (attempts start again). */
  async moveTo(_ref: QueueRef, message: StoredMessage, queue: string, now = Date.now()): Promise<void> {
    this.#db.prepare('UPDATE messages SET queue = ?, attempts = 0, visible_at = ? WHERE seq = ?').run(queue, now, Number(message.handle));
  }

  async depth(ref: QueueRef): Promise<number> {
    return (this.#db.prepare('SELECT count(*) AS n FROM messages WHERE account = ? AND queue = ?').get(ref.account, ref.queue) as { n: number }).n;
  }

  /** Every (account, queue) holding messages, with its depth. */
  async depths(): Promise<{ account: string; queue: string; depth: number }[]> {
    return this.#db.prepare('SELECT account, queue, count(*) AS depth FROM messages GROUP BY account, queue').all() as { account: string; queue: string; depth: number }[];
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
