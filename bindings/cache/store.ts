// Where cached responses live: one SQLite database (a file under --data, or ':memory:'), shared
// by every tenant, each entry under its namespace (account and cache name). Entries are bounded
// one by one and in total per namespace; past the total, the least recently used entries go.
// A cache is allowed to forget, so writes use synchronous=NORMAL: a crash may lose the last
// puts, never corrupt the file.
import type Database from 'better-sqlite3';
import { openSqlite } from '../../src/store/open-sqlite.js';

export interface StoredResponse {
  status: number;
  headers: [string, string][];
  body: Buffer;
  /** request header values the response varies on, lower-cased names (Vary) */
  vary: Record<string, string>;
  /** epoch ms after which the entry is stale and never answered */
  expiresAt: number;
  storedAt: number;
}

export interface CacheStoreOptions {
  /** database file, or ':memory:' */
  path: string;
  /** bytes one namespace may hold in total (bodies and headers); older entries are evicted */
  maxNamespaceBytes?: number;
}

interface Row {
  id: number;
  status: number;
  headers: string;
  body: Buffer;
  vary: string;
  expires_at: number;
  stored_at: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS cache_entries (
    id         INTEGER PRIMARY KEY,
    namespace  TEXT NOT NULL,
    url        TEXT NOT NULL,
    vary       TEXT NOT NULL,
    status     INTEGER NOT NULL,
    headers    TEXT NOT NULL,
    body       BLOB NOT NULL,
    size       INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    stored_at  INTEGER NOT NULL,
    used_at    INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX IF NOT EXISTS cache_entries_key ON cache_entries (namespace, url, vary);
  CREATE INDEX IF NOT EXISTS cache_entries_lru ON cache_entries (namespace, used_at);
  CREATE INDEX IF NOT EXISTS cache_entries_expiry ON cache_entries (expires_at);
`;

export const DEFAULT_MAX_NAMESPACE_BYTES = 256 * 1024 * 1024;

export class CacheStore {
  private readonly db: Database.Database;
  private readonly maxNamespaceBytes: number;
  private readonly statements;

  constructor(options: CacheStoreOptions) {
    this.db = openSqlite(options.path, 'NORMAL');
    this.db.exec(SCHEMA);
    this.maxNamespaceBytes = options.maxNamespaceBytes ?? DEFAULT_MAX_NAMESPACE_BYTES;
    this.statements = {
      variants: this.db.prepare<[string, string], Row>('SELECT id, status, headers, body, vary, expires_at, stored_at FROM cache_entries WHERE namespace = ? AND url = ?'),
      touch: this.db.prepare<[number, number]>('UPDATE cache_entries SET used_at = ? WHERE id = ?'),
      removeId: this.db.prepare<[number]>('DELETE FROM cache_entries WHERE id = ?'),
      removeUrl: this.db.prepare<[string, string]>('DELETE FROM cache_entries WHERE namespace = ? AND url = ?'),
      upsert: this.db.prepare(
        `INSERT INTO cache_entries (namespace, url, vary, status, headers, body, size, expires_at, stored_at, used_at)
         VALUES (@namespace, @url, @vary, @status, @headers, @body, @size, @expiresAt, @storedAt, @storedAt)
         ON CONFLICT (namespace, url, vary) DO UPDATE SET status = excluded.status, headers = excluded.headers, body = excluded.body,
           size = excluded.size, expires_at = excluded.expires_at, stored_at = excluded.stored_at, used_at = excluded.used_at`,
      ),
      namespaceBytes: this.db.prepare<[string], { total: number | null }>('SELECT SUM(size) AS total FROM cache_entries WHERE namespace = ?'),
      oldest: this.db.prepare<[string], { id: number; size: number }>('SELECT id, size FROM cache_entries WHERE namespace = ? ORDER BY used_at LIMIT 64'),
      purgeExpired: this.db.prepare<[number]>('DELETE FROM cache_entries WHERE expires_at <= ?'),
    };
  }

  /** Every stored variant of a URL that is still fresh at `now` (stale ones are removed). */
  variants(namespace: string, url: string, now: number): (StoredResponse & { id: number })[] {
    const fresh: (StoredResponse & { id: number })[] = [];
    for (const row of this.statements.variants.all(namespace, url)) {
      if (row.expires_at <= now) {
        this.statements.removeId.run(row.id);
        continue;
      }
      fresh.push({ id: row.id, status: row.status, headers: JSON.parse(row.headers), body: row.body, vary: JSON.parse(row.vary), expiresAt: row.expires_at, storedAt: row.stored_at });
    }
    return fresh;
  }

  touch(id: number, now: number): void {
    this.statements.touch.run(now, id);
  }

  put(namespace: string, url: string, entry: StoredResponse): void {
    const headers = JSON.stringify(entry.headers);
    const vary = JSON.stringify(entry.vary, Object.keys(entry.vary).sort());
    const size = entry.body.byteLength + headers.length + url.length;
    this.db.transaction(() => {
      this.statements.upsert.run({ namespace, url, vary, status: entry.status, headers, body: entry.body, size, expiresAt: entry.expiresAt, storedAt: entry.storedAt });
      let total = this.statements.namespaceBytes.get(namespace)?.total ?? 0;
      while (total > this.maxNamespaceBytes) {
        const victims = this.statements.oldest.all(namespace);
        if (victims.length === 0) break;
        for (const victim of victims) {
          if (total <= this.maxNamespaceBytes) break;
          this.statements.removeId.run(victim.id);
          total -= victim.size;
        }
      }
    })();
  }

  remove(id: number): void {
    this.statements.removeId.run(id);
  }

  removeUrl(namespace: string, url: string): boolean {
    return this.statements.removeUrl.run(namespace, url).changes > 0;
  }

  purgeExpired(now: number): number {
    return this.statements.purgeExpired.run(now).changes;
  }

  close(): void {
    this.db.close();
  }
}
