// One Durable Object's storage: its own SQLite file (WAL, synchronous=FULL, so a write answered
// to the guest is on disk before the response that depends on it leaves: an acknowledged write
// survives kill -9). The key-value API lives in the table `_cf_KV`, as on Cloudflare's
// SQLite-backed objects; classes from new_sqlite_classes also run their own SQL in the same file.
// Values are structured-cloned with V8's serializer. Every argument is checked here: it came from
// the guest.
import type Database from 'better-sqlite3';
import { serialize, deserialize } from 'node:v8';
import { openSqlite } from '../../src/store/open-sqlite.js';
import { DO_LIMITS, type ListOptionsWire, type SqlAnswer } from './protocol.js';
import { checkedSql, sqlValue } from './sql-guard.js';
import { StorageError } from './errors.js';

export { StorageError };

export interface ObjectStorageOptions {
  /** a class from new_sqlite_classes: ctx.storage.sql exists, and the larger entry limit applies */
  sqlite: boolean;
  /** the database file may grow to this many bytes (SQLite's max_page_count) */
  maxDatabaseBytes: number;
}

const utf8Length = (text: string) => Buffer.byteLength(text, 'utf8');

/** Workers measures a value serialized, and allows the serializer's tagging on top of the 128 KiB
 *  (a 128 KiB byte array fits), as miniflare also does. */
const SERIALIZATION_ALLOWANCE = 32;

/** workerd's words for SQL on a class that is not SQLite-backed. */
const NOT_SQLITE =
  'This Durable Object is not backed by SQLite storage, so the SQL API is not available. SQL can be enabled on a new Durable Object class by using the `new_sqlite_classes` instead of `new_classes` under `[[migrations]]` in your wrangler.toml, but an already-deployed class cannot be converted to SQLite (except by deleting the existing data).';

export class ObjectStorage {
  private readonly db: Database.Database;
  /** open transaction() / transactionSync() levels (savepoints), innermost last */
  private depth = 0;
  /** the key-value table's statements, once it exists (made on the first write, as workerd
   *  makes it: an object that only uses SQL has no _cf_KV in its table list) */
  private kvStatements: { get: Database.Statement; put: Database.Statement; delete: Database.Statement; deleteAll: Database.Statement } | null = null;

  constructor(
    readonly file: string,
    private readonly options: ObjectStorageOptions,
  ) {
    this.db = openSqlite(file, 'FULL');
    const pageSize = Number(this.db.pragma('page_size', { simple: true })) || 4096;
    this.db.pragma(`max_page_count = ${Math.max(16, Math.floor(options.maxDatabaseBytes / pageSize))}`);
  }

  /** The key-value table's statements; null when it does not exist and `create` is false. */
  private kv(create: boolean): NonNullable<ObjectStorage['kvStatements']> | null {
    if (this.kvStatements) return this.kvStatements;
    const exists = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_cf_KV'").pluck().get() !== undefined;
    if (!exists && !create) return null;
    if (!exists) this.db.exec('CREATE TABLE IF NOT EXISTS _cf_KV (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID');
    this.kvStatements = {
      get: this.db.prepare('SELECT value FROM _cf_KV WHERE key = ?').pluck(),
      put: this.db.prepare('INSERT INTO _cf_KV (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      delete: this.db.prepare('DELETE FROM _cf_KV WHERE key = ?'),
      deleteAll: this.db.prepare('DELETE FROM _cf_KV'),
    };
    return this.kvStatements;
  }

  /** Ready for the object's first call: the file is open (the constructor) and, when the key-value
   *  table exists, its statements are prepared. */
  prepare(): void {
    this.kv(false);
  }

  // --- key-value API ----------------------------------------------------------------------------

  get(keys: unknown): [string, unknown][] {
    const list = this.keyList(keys, 'get');
    const out: [string, unknown][] = [];
    const kv = this.kv(false);
    if (!kv) return out;
    let total = 0;
    for (const key of list) {
      const bytes = kv.get.get(key) as Buffer | undefined;
      if (bytes === undefined) continue;
      total += bytes.byteLength;
      if (total > DO_LIMITS.maxReadBytes) throw new StorageError(`get(): the values are larger than ${DO_LIMITS.maxReadBytes} bytes together; get fewer keys at once`, 'RangeError');
      out.push([key, deserialize(bytes)]);
    }
    return out;
  }

  put(entries: unknown): void {
    if (!Array.isArray(entries) || entries.length === 0) throw new StorageError('put() needs a key and a value, or an object of entries', 'TypeError');
    if (entries.length > DO_LIMITS.maxBatchKeys) throw new StorageError(`put() of more than ${DO_LIMITS.maxBatchKeys} entries at once`, 'RangeError');
    const rows: [string, Buffer][] = entries.map((entry) => {
      if (!Array.isArray(entry) || entry.length !== 2) throw new StorageError('put(): invalid entry', 'TypeError');
      const key = this.key(entry[0]);
      if (entry[1] === undefined) throw new StorageError('put() called with undefined value.', 'TypeError');
      let bytes: Buffer;
      try {
        bytes = serialize(entry[1]);
      } catch (error) {
        throw new StorageError(`put(): the value of "${key}" could not be serialized: ${(error as Error).message}`, 'DataCloneError');
      }
      this.checkValueSize(key, bytes);
      return [key, bytes];
    });
    this.atomically(() => {
      const kv = this.kv(true)!;
      for (const [key, bytes] of rows) kv.put.run(key, bytes);
    });
  }

  /** How many of the keys existed. */
  delete(keys: unknown): number {
    const list = this.keyList(keys, 'delete');
    let deleted = 0;
    const kv = this.kv(false);
    if (!kv) return 0;
    this.atomically(() => {
      for (const key of list) deleted += kv.delete.run(key).changes;
    });
    return deleted;
  }

  list(raw: unknown): [string, unknown][] {
    const options = (raw && typeof raw === 'object' ? raw : {}) as ListOptionsWire;
    const where: string[] = [];
    const params: unknown[] = [];
    const text = (value: unknown, name: string): string | undefined => {
      if (value === undefined || value === null) return undefined;
      if (typeof value !== 'string') throw new StorageError(`list(): ${name} must be a string`, 'TypeError');
      return value;
    };
    const start = text(options.start, 'start');
    const startAfter = text(options.startAfter, 'startAfter');
    const end = text(options.end, 'end');
    const prefix = text(options.prefix, 'prefix');
    if (start !== undefined && startAfter !== undefined) throw new StorageError('list(): start and startAfter cannot be used together', 'TypeError');
    if (start !== undefined) where.push('key >= ?') && params.push(start);
    if (startAfter !== undefined) where.push('key > ?') && params.push(startAfter);
    if (end !== undefined) where.push('key < ?') && params.push(end);
    if (prefix !== undefined && prefix !== '') {
      // Byte order (SQLite's BINARY collation on UTF-8 text), as Cloudflare orders keys.
      where.push('key >= ? AND substr(key, 1, ?) = ?');
      params.push(prefix, [...prefix].length, prefix);
    }
    let limit = -1;
    if (options.limit !== undefined && options.limit !== null) {
      if (typeof options.limit !== 'number' || !Number.isInteger(options.limit) || options.limit <= 0) throw new StorageError('list(): limit must be a positive integer', 'TypeError');
      limit = options.limit;
    }
    if (!this.kv(false)) return [];
    const order = options.reverse === true ? 'DESC' : 'ASC';
    const sql = `SELECT key, value FROM _cf_KV${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY key ${order} LIMIT ?`;
    // Read row by row: an object of a gigabyte listed without a limit stops at the bound, not in memory.
    const out: [string, unknown][] = [];
    let total = 0;
    for (const [key, bytes] of this.db.prepare(sql).raw().iterate(...params, limit) as Iterable<[string, Buffer]>) {
      total += bytes.byteLength + key.length;
      if (total > DO_LIMITS.maxReadBytes) throw new StorageError(`list(): the entries are larger than ${DO_LIMITS.maxReadBytes} bytes together; pass a limit (and start after the last key) to read them in pages`, 'RangeError');
      out.push([key, deserialize(bytes)]);
    }
    return out;
  }

  deleteAll(): void {
    this.atomically(() => {
      this.kv(false)?.deleteAll.run();
      if (this.options.sqlite) {
        // Cloudflare's deleteAll() on a SQLite-backed object drops the object's own tables too.
        const tables = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'").pluck().all() as string[];
        for (const table of tables) this.db.exec(`DROP TABLE IF EXISTS "${table.replace(/"/g, '""')}"`);
      }
    });
  }

  // --- transactions (savepoints, so they nest) ----------------------------------------------------

  get transactionDepth(): number {
    return this.depth;
  }

  begin(): void {
    this.depth++;
    this.db.exec(`SAVEPOINT cf_txn_${this.depth}`);
  }

  commit(): void {
    if (this.depth === 0) throw new StorageError('no transaction to commit');
    this.db.exec(`RELEASE cf_txn_${this.depth}`);
    this.depth--;
  }

  rollback(): void {
    if (this.depth === 0) throw new StorageError('no transaction to roll back');
    this.db.exec(`ROLLBACK TO cf_txn_${this.depth}; RELEASE cf_txn_${this.depth}`);
    this.depth--;
  }

  /** Several statements as one commit (one fsync), inside an open transaction as part of it. */
  private atomically(work: () => void): void {
    if (this.db.inTransaction) work();
    else this.db.transaction(work)();
  }

  // --- SQL API ------------------------------------------------------------------------------------

  exec(query: unknown, bindings: unknown): SqlAnswer {
    if (!this.options.sqlite) throw new StorageError(NOT_SQLITE, 'Error');
    const statements = checkedSql(query);
    if (!Array.isArray(bindings)) throw new StorageError('sql.exec(): invalid bindings', 'TypeError');
    if (bindings.length > DO_LIMITS.maxSqlBindings) throw new StorageError(`sql.exec(): more than ${DO_LIMITS.maxSqlBindings} bound parameters`, 'RangeError');
    const values = bindings.map(sqlValue);
    try {
      return this.run(statements, values);
    } catch (error) {
      if (error instanceof StorageError) throw error;
      // SQLite's own errors as workerd words them: "<message>: <code>".
      const { message, code } = error as { message: string; code?: string };
      throw new StorageError(code && !message.endsWith(code) ? `${message}: ${code}` : message, 'Error');
    }
  }

  private run(statements: string[], values: unknown[]): SqlAnswer {
    let answer: SqlAnswer = { columnNames: [], rows: [], rowsRead: 0, rowsWritten: 0 };
    let read = 0;
    let written = 0;
    // The statements of one exec() commit together (or not at all), as on Cloudflare.
    this.atomically(() => {
      statements.forEach((text, i) => {
        const last = i === statements.length - 1;
        const statement = this.db.prepare(text);
        // As on Cloudflare, bound parameters belong to the last statement of the query.
        const params = last ? values : [];
        if (statement.reader) {
          const columnNames = statement.columns().map((c) => c.name);
          const rows: unknown[][] = [];
          let bytes = 0;
          for (const row of statement.raw().iterate(...params) as Iterable<unknown[]>) {
            const out = row.map(fromSqlite);
            for (const value of out) bytes += typeof value === 'string' ? value.length * 2 : value instanceof ArrayBuffer ? value.byteLength : 8;
            rows.push(out);
            if (rows.length > DO_LIMITS.maxSqlRows || bytes > DO_LIMITS.maxSqlResultBytes) {
              throw new StorageError(`sql.exec(): the result is larger than ${DO_LIMITS.maxSqlRows} rows or ${DO_LIMITS.maxSqlResultBytes} bytes; add a LIMIT`, 'RangeError');
            }
          }
          read += rows.length;
          const changes = statement.readonly ? 0 : (this.db.prepare('SELECT changes()').pluck().get() as number);
          written += changes;
          if (last) answer = { columnNames, rows, rowsRead: read, rowsWritten: written };
        } else {
          const info = statement.run(...params);
          written += info.changes;
          if (last) answer = { columnNames: [], rows: [], rowsRead: read, rowsWritten: written };
        }
      });
    });
    return answer;
  }

  /** Bytes the database file takes (ctx.storage.sql.databaseSize). */
  size(): number {
    const pages = Number(this.db.pragma('page_count', { simple: true }));
    const pageSize = Number(this.db.pragma('page_size', { simple: true }));
    return pages * pageSize;
  }

  // --- helpers ------------------------------------------------------------------------------------

  private key(value: unknown): string {
    if (typeof value !== 'string') throw new StorageError('Durable Object storage keys must be strings', 'TypeError');
    if (utf8Length(value) > DO_LIMITS.maxKeyBytes) throw new StorageError(`Keys cannot be larger than ${DO_LIMITS.maxKeyBytes} bytes.`, 'RangeError');
    return value;
  }

  private keyList(keys: unknown, op: string): string[] {
    if (!Array.isArray(keys)) throw new StorageError(`${op}(): keys must be a string or an array of strings`, 'TypeError');
    if (keys.length > DO_LIMITS.maxBatchKeys) throw new StorageError(`${op}() of more than ${DO_LIMITS.maxBatchKeys} keys at once`, 'RangeError');
    return keys.map((k) => this.key(k));
  }

  private checkValueSize(key: string, bytes: Buffer): void {
    if (this.options.sqlite) {
      if (bytes.byteLength + utf8Length(key) > DO_LIMITS.maxSqliteEntryBytes) {
        throw new StorageError(`Values cannot be larger than ${DO_LIMITS.maxSqliteEntryBytes} bytes (key and value together).`, 'RangeError');
      }
    } else if (bytes.byteLength > DO_LIMITS.maxValueBytes + SERIALIZATION_ALLOWANCE) {
      throw new StorageError(`Values cannot be larger than ${DO_LIMITS.maxValueBytes} bytes. A value of size ${bytes.byteLength} was provided.`, 'RangeError');
    }
  }

  close(): void {
    if (!this.db.open) return;
    // A transaction the guest never ended (its isolate died) is not kept.
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
    this.depth = 0;
    this.db.close();
  }
}

/** A SQLite value as the guest receives it: BLOBs as ArrayBuffers. */
function fromSqlite(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
  if (typeof value === 'bigint') return Number(value);
  return value;
}
