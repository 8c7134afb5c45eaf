// One D1 database: a SQLite file opened with node:sqlite, in WAL mode with synchronous=FULL (a
// commit is on disk before it is answered, so an acknowledged write survives kill -9 and power
// loss), and fenced the way D1 fences its tenants' SQL: an authorizer refuses ATTACH/DETACH,
// transaction statements (a transaction is a batch()) and every PRAGMA but D1's own list;
// VACUUM (which can write a file elsewhere with INTO) is refused; SQLite's own limits bound
// statement length, bound parameters, value size and columns; max_page_count bounds the file.
// This runs in the executor process (executor-process.ts), never on the serving thread: a
// statement can take as long as the SQL makes it, and only killing that process stops it.
import { DatabaseSync, constants, type StatementSync } from 'node:sqlite';
import { D1_LIMITS, type WireD1Meta, type WireD1Result, type WireD1Statement, type WireD1Value } from './protocol.js';
import { firstKeyword, splitStatements } from './sql-split.js';

export interface D1EngineOptions {
  /** the file may not grow past this (SQLITE_FULL), bytes */
  maxDatabaseBytes: number;
  /** bytes of rows one call may answer with */
  maxResultBytes: number;
}

/** An error as D1 reports it to the guest: the message is what `D1_ERROR: ` is put in front of. */
export class D1QueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'D1QueryError';
  }
}

// The pragmas D1 lets a query run (developers.cloudflare.com/d1/sql-api/sql-statements).
const ALLOWED_PRAGMAS = new Set([
  'table_list', 'table_info', 'table_xinfo', 'index_list', 'index_info', 'index_xinfo', 'foreign_key_list', 'foreign_key_check',
  'foreign_keys', 'defer_foreign_keys', 'case_sensitive_like', 'ignore_check_constraints', 'legacy_alter_table', 'recursive_triggers',
  'reverse_unordered_selects', 'quick_check', 'integrity_check', 'optimize', 'collation_list', 'function_list', 'pragma_list',
]);

const PRIMARY_CODES: Record<number, string> = {
  1: 'SQLITE_ERROR', 2: 'SQLITE_INTERNAL', 3: 'SQLITE_PERM', 4: 'SQLITE_ABORT', 5: 'SQLITE_BUSY', 6: 'SQLITE_LOCKED', 7: 'SQLITE_NOMEM',
  8: 'SQLITE_READONLY', 9: 'SQLITE_INTERRUPT', 10: 'SQLITE_IOERR', 11: 'SQLITE_CORRUPT', 13: 'SQLITE_FULL', 14: 'SQLITE_CANTOPEN',
  17: 'SQLITE_SCHEMA', 18: 'SQLITE_TOOBIG', 19: 'SQLITE_CONSTRAINT', 20: 'SQLITE_MISMATCH', 21: 'SQLITE_MISUSE', 23: 'SQLITE_AUTH',
  25: 'SQLITE_RANGE',
};

const TX_REFUSED = 'D1 runs each call in its own transaction; use batch() to run statements atomically (BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not allowed)';

let bookmarkSequence = 0;

export class D1Engine {
  readonly #db: DatabaseSync;
  readonly #options: D1EngineOptions;
  readonly #statements = new Map<string, StatementSync>();
  /** why the authorizer last refused something (SQLite only says "not authorized") */
  #refusal: string | null = null;
  /** our own BEGIN/COMMIT/ROLLBACK pass the authorizer */
  #internal = false;
  readonly #pageSize: number;

  constructor(path: string, options: D1EngineOptions) {
    this.#options = options;
    this.#db = new DatabaseSync(path, { timeout: 5000, allowExtension: false, enableDoubleQuotedStringLiterals: true });
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON');
    this.#pageSize = Number((this.#db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size);
    this.#db.exec(`PRAGMA max_page_count = ${Math.max(1, Math.floor(options.maxDatabaseBytes / this.#pageSize))}`);
    this.#db.enableDefensive(true);
    const limits = this.#db.limits;
    limits.sqlLength = D1_LIMITS.maxStatementBytes;
    limits.variableNumber = D1_LIMITS.maxBoundParameters;
    limits.length = D1_LIMITS.maxValueBytes;
    limits.column = D1_LIMITS.maxColumns;
    limits.attach = 0;
    this.#db.setAuthorizer((action, arg1, arg2) => this.#authorize(action, arg1, arg2));
  }

  #authorize(action: number, arg1: string | null, arg2: string | null): number {
    switch (action) {
      case constants.SQLITE_ATTACH:
      case constants.SQLITE_DETACH:
        this.#refusal = 'ATTACH and DETACH are not allowed';
        return constants.SQLITE_DENY;
      case constants.SQLITE_TRANSACTION:
      case constants.SQLITE_SAVEPOINT:
        if (this.#internal) return constants.SQLITE_OK;
        this.#refusal = TX_REFUSED;
        return constants.SQLITE_DENY;
      case constants.SQLITE_PRAGMA: {
        const name = (arg1 ?? '').toLowerCase();
        if (this.#internal || (ALLOWED_PRAGMAS.has(name) && !(name === 'integrity_check' && arg2 !== null))) return constants.SQLITE_OK;
        this.#refusal = `PRAGMA ${name} is not allowed`;
        return constants.SQLITE_DENY;
      }
      case constants.SQLITE_FUNCTION:
        if (arg2 === 'load_extension') {
          this.#refusal = 'load_extension() is not allowed';
          return constants.SQLITE_DENY;
        }
        return constants.SQLITE_OK;
      default:
        return constants.SQLITE_OK;
    }
  }

  /** Statements run in one transaction: all or nothing (a batch; a single query is a batch of one). */
  query(statements: WireD1Statement[]): { results: WireD1Result[]; bookmark: string } {
    const budget = { bytes: this.#options.maxResultBytes };
    const results = this.#transaction(() => statements.map((statement) => this.#run(statement.sql, statement.params, budget)));
    return { results, bookmark: this.bookmark() };
  }

  /** Multi-statement text, each statement in its own transaction; stops at the first failure.
   *  `lines`: as the guest's exec() does on D1, every line is one query (which may hold several
   *  statements) and a failure names its line; otherwise statements may span lines (a .sql file). */
  exec(sql: string, lines: boolean): { count: number; duration: number } {
    let count = 0;
    let duration = 0;
    const budget = { bytes: this.#options.maxResultBytes };
    const pieces = lines ? sql.trim().split('\n').map((text, i) => ({ sql: text, line: i + 1 })) : splitStatements(sql);
    for (const piece of pieces) {
      try {
        if (lines && piece.sql.trim() === '') throw new D1QueryError('No SQL statements detected.');
        const result = this.#transaction(() => this.#run(piece.sql, [], budget, !lines));
        duration += result.meta.duration;
      } catch (error) {
        const text = lines ? piece.sql : piece.sql.split('\n')[0];
        throw new D1QueryError(`Error in line ${piece.line}: ${text}: ${(error as Error).message}`);
      }
      count++;
    }
    return { count, duration };
  }

  /** The whole database as one SQLite file image (D1's dump()); refused when larger than `maxBytes`
   *  (a guest's dump() is an answer like any other, bounded as one, and this is checked before a
   *  copy of the file is made). */
  dump(maxBytes?: number): Uint8Array {
    if (maxBytes !== undefined && this.size() > maxBytes) throw new D1QueryError(`dump too large: the database is ${this.size()} bytes, more than ${maxBytes}; the operator can export it (GET /d1/:id/export on the admin API)`);
    // serialize() reads the page count and size with pragmas of its own
    this.#internal = true;
    try {
      return this.#db.serialize();
    } finally {
      this.#internal = false;
    }
  }

  size(): number {
    this.#internal = true;
    try {
      const pages = Number((this.#db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count);
      return pages * this.#pageSize;
    } finally {
      this.#internal = false;
    }
  }

  /** An opaque, increasing token (D1's session bookmark): one primary here, so any is satisfied. */
  bookmark(): string {
    bookmarkSequence++;
    return `${Date.now().toString(16).padStart(12, '0')}-${bookmarkSequence.toString(16).padStart(8, '0')}`;
  }

  close(): void {
    this.#statements.clear();
    this.#db.close();
  }

  #transaction<T>(body: () => T): T {
    this.#control('BEGIN');
    try {
      const result = body();
      this.#control('COMMIT');
      return result;
    } catch (error) {
      if (this.#db.isTransaction) this.#control('ROLLBACK');
      throw error;
    }
  }

  #control(sql: string): void {
    this.#internal = true;
    try {
      this.#db.exec(sql);
    } finally {
      this.#internal = false;
    }
  }

  #prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement) return statement;
    this.#refusal = null;
    try {
      statement = this.#db.prepare(sql);
    } catch (error) {
      throw this.#error(error);
    }
    statement.setReturnArrays(true);
    if (this.#statements.size >= 200) this.#statements.delete(this.#statements.keys().next().value!);
    this.#statements.set(sql, statement);
    return statement;
  }

  #run(sql: string, params: WireD1Value[], budget: { bytes: number }, single = false): WireD1Result {
    if (typeof sql !== 'string' || sql.trim() === '') throw new D1QueryError('No SQL statements detected.');
    if (Buffer.byteLength(sql) > D1_LIMITS.maxStatementBytes) throw new D1QueryError(`statement too long: more than ${D1_LIMITS.maxStatementBytes} bytes: SQLITE_TOOBIG`);
    const pieces = single ? [{ sql, line: 1 }] : splitStatements(sql);
    if (pieces.length === 0) throw new D1QueryError('No SQL statements detected.');
    let last: WireD1Result | undefined;
    // Text holding several statements runs them in order; parameters bind to the first.
    pieces.forEach((piece, index) => {
      last = this.#runOne(piece.sql, index === 0 ? params : [], budget);
    });
    return last!;
  }

  #runOne(sql: string, params: WireD1Value[], budget: { bytes: number }): WireD1Result {
    if (firstKeyword(sql) === 'VACUUM') throw new D1QueryError('VACUUM is not allowed: SQLITE_AUTH');
    const started = performance.now();
    const statement = this.#prepare(sql);
    const values = params.map((value) => (value instanceof ArrayBuffer ? new Uint8Array(value) : value));
    const before = this.#totalChanges();
    const columns = statement.columns().map((column) => column.name);
    const rows: WireD1Value[][] = [];
    try {
      if (columns.length > 0) {
        for (const row of statement.iterate(...(values as never[])) as Iterable<unknown[]>) {
          rows.push(row.map((cell) => this.#cell(cell, budget)));
        }
      } else {
        statement.run(...(values as never[]));
      }
    } catch (error) {
      throw this.#error(error);
    }
    const after = this.#totalChanges();
    const facts = this.#db.prepare('SELECT changes() AS c, last_insert_rowid() AS r').get() as { c: number; r: number };
    const changes = after === before ? 0 : Number(facts.c);
    const duration = performance.now() - started;
    const meta: WireD1Meta = {
      served_by: 'cinder-d1',
      served_by_region: 'local',
      served_by_primary: true,
      timings: { sql_duration_ms: duration },
      duration,
      changes,
      last_row_id: Number(facts.r),
      changed_db: after !== before || isSchemaChange(sql),
      size_after: this.size(),
      // SQLite does not count the rows a statement scanned; these count the rows it answered
      // with and the rows it changed.
      rows_read: rows.length,
      rows_written: changes,
    };
    return { columns, rows, meta };
  }

  #totalChanges(): number {
    return Number((this.#db.prepare('SELECT total_changes() AS t').get() as { t: number }).t);
  }

  #cell(cell: unknown, budget: { bytes: number }): WireD1Value {
    let value: WireD1Value;
    if (cell === null || typeof cell === 'number' || typeof cell === 'string') value = cell;
    else if (typeof cell === 'bigint') value = Number(cell);
    else if (cell instanceof Uint8Array) value = cell.buffer.slice(cell.byteOffset, cell.byteOffset + cell.byteLength) as ArrayBuffer;
    else value = String(cell);
    budget.bytes -= value === null ? 1 : typeof value === 'number' ? 8 : typeof value === 'string' ? value.length * 2 : value.byteLength;
    if (budget.bytes < 0) throw new D1QueryError(`result too large: more than ${this.#options.maxResultBytes} bytes; select fewer rows or columns (LIMIT)`);
    return value;
  }

  #error(error: unknown): Error {
    if (error instanceof D1QueryError) return error;
    const e = error as Error & { errcode?: number };
    if (typeof e.errcode !== 'number') return new D1QueryError(e.message ?? String(error));
    const code = PRIMARY_CODES[e.errcode & 0xff] ?? `SQLITE_${e.errcode}`;
    if (code === 'SQLITE_AUTH' && this.#refusal) return new D1QueryError(`${this.#refusal}: ${code}`);
    return new D1QueryError(`${e.message}: ${code}`);
  }
}

function isSchemaChange(sql: string): boolean {
  const keyword = firstKeyword(sql);
  return keyword === 'CREATE' || keyword === 'DROP' || keyword === 'ALTER';
}
