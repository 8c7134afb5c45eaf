// SQLite KV backend (better-sqlite3): the default, one file under --data shared by every
// namespace. WAL mode so readers never wait for the writer and other processes (`cinder kv`
// while a server runs) can open the same file.
//
// Durability: a put resolves only after its transaction has committed. In WAL mode the commit
// is in the WAL file, written through to the OS, before better-sqlite3 returns, so an
// acknowledged put survives kill -9 of the process with synchronous=NORMAL. Surviving power loss
// or an OS crash needs an fsync per commit: `synchronous: 'full'` buys that at ~1 fsync per put.
//
// better-sqlite3 is synchronous. KV statements are point lookups and short range scans on the
// primary key, so they take microseconds and running them on the event loop is cheaper than a
// worker-thread hop would be.
import type Database from 'better-sqlite3';
import { type KVBackend, type ListPage, type ListQuery, type StoredEntry } from './backend.js';
import { prefixUpperBound } from './keys.js';
import { openSqlite } from '../../src/store/open-sqlite.js';

export interface SqliteBackendOptions {
  /** database file; ':memory:' works too */
  path: string;
  synchronous?: 'normal' | 'full';
}

interface Row {
  value: Buffer;
  metadata: string | null;
  expiration: number | null;
}

interface KeyRow {
  key: string;
  metadata: string | null;
  expiration: number | null;
}

// A rowid table with a unique index rather than WITHOUT ROWID: values can be 25 MiB, and
// WITHOUT ROWID tables keep whole rows inside the b-tree, which is only good for small rows.
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS kv_entries (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    metadata   TEXT,
    expiration INTEGER
  );
  CREATE UNIQUE INDEX IF NOT EXISTS kv_entries_key ON kv_entries (namespace, key);
  CREATE INDEX IF NOT EXISTS kv_entries_expiration ON kv_entries (expiration) WHERE expiration IS NOT NULL;
`;

export class SqliteBackend implements KVBackend {
  readonly kind = 'sqlite' as const;
  readonly path: string;
  private readonly db: Database.Database;
  private readonly stmt: {
    get: Database.Statement<[string, string, number], Row>;
    put: Database.Statement<[string, string, Buffer, string | null, number | null]>;
    delete: Database.Statement<[string, string]>;
    list: Database.Statement<[string, string, string, number, number], KeyRow>;
    listBounded: Database.Statement<[string, string, string, string, number, number], KeyRow>;
    purge: Database.Statement<[number]>;
  };
  private readonly readMany: (namespace: string, keys: string[], now: number) => (StoredEntry | null)[];

  constructor(options: SqliteBackendOptions) {
    this.path = options.path;
    this.db = openSqlite(options.path, options.synchronous === 'full' ? 'FULL' : 'NORMAL');
    this.db.exec(SCHEMA);
    const live = '(expiration IS NULL OR expiration * 1000 > ?)';
    this.stmt = {
      get: this.db.prepare(`SELECT value, metadata, expiration FROM kv_entries WHERE namespace = ? AND key = ? AND ${live}`),
      put: this.db.prepare(
        `INSERT INTO kv_entries (namespace, key, value, metadata, expiration) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, expiration = excluded.expiration`,
      ),
      delete: this.db.prepare('DELETE FROM kv_entries WHERE namespace = ? AND key = ?'),
      // `key >= prefix` starts the prefix range, `key > after` resumes after a cursor.
      list: this.db.prepare(
        `SELECT key, metadata, expiration FROM kv_entries
         WHERE namespace = ? AND key >= ? AND key > ? AND ${live} ORDER BY key LIMIT ?`,
      ),
      listBounded: this.db.prepare(
        `SELECT key, metadata, expiration FROM kv_entries
         WHERE namespace = ? AND key >= ? AND key > ? AND key < ? AND ${live} ORDER BY key LIMIT ?`,
      ),
      purge: this.db.prepare('DELETE FROM kv_entries WHERE expiration IS NOT NULL AND expiration * 1000 <= ?'),
    };
    // One read transaction for a bulk get, so it sees a single snapshot of the namespace.
    this.readMany = this.db.transaction((namespace: string, keys: string[], now: number) => keys.map((key) => this.read(namespace, key, now)));
  }

  private read(namespace: string, key: string, now: number): StoredEntry | null {
    const row = this.stmt.get.get(namespace, key, now);
    return row ? { value: row.value, metadata: row.metadata, expiration: row.expiration } : null;
  }

  async get(namespace: string, key: string, now: number): Promise<StoredEntry | null> {
    return this.read(namespace, key, now);
  }

  async getMany(namespace: string, keys: string[], now: number): Promise<(StoredEntry | null)[]> {
    return this.readMany(namespace, keys, now);
  }

  async put(namespace: string, key: string, entry: StoredEntry): Promise<void> {
    this.stmt.put.run(namespace, key, entry.value, entry.metadata, entry.expiration);
  }

  async delete(namespace: string, key: string): Promise<void> {
    this.stmt.delete.run(namespace, key);
  }

  async list(namespace: string, query: ListQuery): Promise<ListPage> {
    const upper = query.prefix ? prefixUpperBound(query.prefix) : null;
    // '' sorts before every key, so "after nothing" is `key > ''`.
    const after = query.after ?? '';
    const rows =
      upper === null
        ? this.stmt.list.all(namespace, query.prefix, after, query.now, query.limit + 1)
        : this.stmt.listBounded.all(namespace, query.prefix, after, upper, query.now, query.limit + 1);
    const truncated = rows.length > query.limit;
    const keys = (truncated ? rows.slice(0, query.limit) : rows).map((row) => ({ name: row.key, expiration: row.expiration, metadata: row.metadata }));
    return { keys, truncated };
  }

  async purgeExpired(now: number): Promise<number> {
    return this.stmt.purge.run(now).changes;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

