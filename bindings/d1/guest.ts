// The guest half of a D1 binding: env.NAME as Cloudflare documents D1 (prepare/bind with
// first/all/raw/run, batch, exec, withSession, dump). It holds only the binding's NAME; every
// call goes to the host by that name and the host resolves it against the calling worker's own
// bindings. Values are converted here as D1's client does (booleans to 1/0, bytes to BLOBs,
// anything else a D1_TYPE_ERROR), and answers are shaped as D1 shapes them (BLOBs come back as
// arrays of numbers).
import { hostCall } from '../../sandbox/bridge.js';
import { D1_OPS } from '../../protocol/wall.js';
import { D1_LIMITS, type WireD1ExecAnswer, type WireD1Meta, type WireD1QueryAnswer, type WireD1Result, type WireD1Statement, type WireD1Value } from './protocol.js';

const constructToken = Symbol('D1Database');
const FIRST_PRIMARY = 'first-primary';
const FIRST_UNCONSTRAINED = 'first-unconstrained';

interface D1Result {
  success: true;
  meta: WireD1Meta;
  results: Record<string, unknown>[];
}

/** Errors made on the host arrive as copies; rebuild them in this realm (D1's own shape: the
 *  message names the error kind, `cause` holds the database's words). */
function rethrow(error: unknown): never {
  const message = error && typeof (error as Error).message === 'string' ? (error as Error).message : String(error);
  if ((error as Error)?.name === 'TypeError') throw new TypeError(message);
  const inner = message.replace(/^D1_[A-Z_]+: /, '');
  throw new Error(message, { cause: new Error(inner) });
}

function call<T>(op: string, ...args: unknown[]): Promise<T> {
  return hostCall<T>(op, ...args).catch(rethrow);
}

function bindValue(value: unknown): WireD1Value {
  const type = typeof value;
  if (type === 'number' || type === 'string') return value as number | string;
  if (type === 'boolean') return value ? 1 : 0;
  if (value === null) return null;
  if (type === 'object') {
    if (Array.isArray(value) && value.every((b) => typeof b === 'number' && b >= 0 && b < 256)) return new Uint8Array(value).buffer;
    if (value instanceof ArrayBuffer) return value.slice(0);
    if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice().buffer;
  }
  const message = `Type '${type}' not supported for value '${String(value)}'`;
  throw new Error(`D1_TYPE_ERROR: ${message}`, { cause: new Error(message) });
}

/** A batch's SQL and values together are bounded before they are copied to the host: a string
 *  bound many times is one string here but a copy per use once it crosses (the host checks too). */
function checkCallBytes(wire: WireD1Statement[]): void {
  let bytes = 0;
  for (const { sql, params } of wire) {
    bytes += sql.length;
    for (const value of params) bytes += typeof value === 'string' ? value.length : value instanceof ArrayBuffer ? value.byteLength : 8;
  }
  if (bytes > D1_LIMITS.maxCallBytes) {
    const message = `batch too large: its SQL and bound values are more than ${D1_LIMITS.maxCallBytes} bytes together: SQLITE_TOOBIG`;
    throw new Error(`D1_ERROR: ${message}`, { cause: new Error(message) });
  }
}

function cell(value: WireD1Value): unknown {
  return value instanceof ArrayBuffer ? Array.from(new Uint8Array(value)) : value;
}

function toObjects(result: WireD1Result): D1Result {
  const { columns, rows } = result;
  const results = rows.map((row) => {
    const object: Record<string, unknown> = {};
    for (let i = 0; i < columns.length; i++) Object.defineProperty(object, columns[i], { value: cell(row[i]), enumerable: true, writable: true, configurable: true });
    return object;
  });
  return { success: true, meta: result.meta, results };
}

/** Where statements go: the database itself (always the primary) or a session. */
class SessionState {
  constructor(
    readonly binding: string,
    public bookmarkOrConstraint: string,
    readonly keepsBookmark: boolean,
  ) {}

  async query(statements: D1PreparedStatement[]): Promise<WireD1Result[]> {
    const wire = statements.map((s) => ({ sql: s.statement, params: paramsOf(s) }));
    checkCallBytes(wire);
    const answer = await call<WireD1QueryAnswer>(D1_OPS.query, this.binding, wire);
    if (this.keepsBookmark) {
      const current = this.bookmark();
      if (current === null || current < answer.bookmark) this.bookmarkOrConstraint = answer.bookmark;
    }
    return answer.results;
  }

  bookmark(): string | null {
    if (!this.keepsBookmark) return null;
    return this.bookmarkOrConstraint === FIRST_PRIMARY || this.bookmarkOrConstraint === FIRST_UNCONSTRAINED ? null : this.bookmarkOrConstraint;
  }
}

const sessions = new WeakMap<object, SessionState>();
const statementParams = new WeakMap<D1PreparedStatement, WireD1Value[]>();

/** A statement's bound values as they cross (what is not a real prepared statement is refused). */
function paramsOf(statement: D1PreparedStatement): WireD1Value[] {
  const params = statementParams.get(statement);
  if (!params) throw new TypeError('D1: not a prepared statement');
  return params;
}

export class D1PreparedStatement {
  readonly #session: SessionState;
  readonly statement: string;

  constructor(session: unknown, statement: string, params: WireD1Value[] = []) {
    if (!(session instanceof SessionState)) throw new TypeError('Illegal constructor');
    this.#session = session;
    this.statement = statement;
    statementParams.set(this, params);
  }

  get params(): unknown[] {
    return paramsOf(this).map(cell);
  }

  bind(...values: unknown[]): D1PreparedStatement {
    return new D1PreparedStatement(this.#session, this.statement, values.map(bindValue));
  }

  async first(columnName?: unknown): Promise<unknown> {
    const [result] = await this.#session.query([this]);
    const { results } = toObjects(result);
    if (results.length === 0) return null;
    const row = results[0];
    if (columnName === undefined) return row;
    const name = String(columnName);
    if (!Object.hasOwn(row, name)) throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${name})`, { cause: new Error('Column not found') });
    return row[name];
  }

  async all(): Promise<D1Result> {
    const [result] = await this.#session.query([this]);
    return toObjects(result);
  }

  async run(): Promise<D1Result> {
    const [result] = await this.#session.query([this]);
    return toObjects(result);
  }

  async raw(options?: unknown): Promise<unknown[][]> {
    const [result] = await this.#session.query([this]);
    const rows: unknown[][] = result.rows.map((row) => row.map(cell));
    const columnNames = options !== null && typeof options === 'object' && (options as { columnNames?: unknown }).columnNames;
    return columnNames ? [result.columns.slice(), ...rows] : rows;
  }

  get [Symbol.toStringTag](): string {
    return 'D1PreparedStatement';
  }
}

function checkStatements(statements: unknown): D1PreparedStatement[] {
  if (!Array.isArray(statements)) throw new TypeError('D1 batch() takes an array of prepared statements');
  return statements.map((statement) => {
    if (!(statement instanceof D1PreparedStatement)) throw new TypeError('D1 batch(): every item must be a prepared statement (db.prepare(...))');
    paramsOf(statement);
    return statement;
  });
}

async function batch(session: SessionState, statements: unknown): Promise<D1Result[]> {
  const list = checkStatements(statements);
  if (list.length === 0) return [];
  const results = await session.query(list);
  return results.map(toObjects);
}

function sqlText(query: unknown): string {
  if (typeof query === 'symbol') throw new TypeError('Cannot convert a Symbol value to a string');
  return String(query);
}

export class D1DatabaseSession {
  constructor(token: unknown, state: SessionState) {
    if (token !== constructToken) throw new TypeError('Illegal constructor');
    sessions.set(this, state);
  }

  prepare(query: unknown): D1PreparedStatement {
    return new D1PreparedStatement(sessions.get(this), sqlText(query));
  }

  batch(statements: unknown): Promise<D1Result[]> {
    return batch(sessions.get(this)!, statements);
  }

  getBookmark(): string | null {
    return sessions.get(this)!.bookmark();
  }

  get [Symbol.toStringTag](): string {
    return 'D1DatabaseSession';
  }
}

export class D1Database {
  constructor(token: unknown, binding: string) {
    if (token !== constructToken) throw new TypeError('Illegal constructor');
    sessions.set(this, new SessionState(binding, FIRST_PRIMARY, false));
  }

  prepare(query: unknown): D1PreparedStatement {
    return new D1PreparedStatement(sessions.get(this), sqlText(query));
  }

  batch(statements: unknown): Promise<D1Result[]> {
    return batch(sessions.get(this)!, statements);
  }

  async exec(query: unknown): Promise<WireD1ExecAnswer> {
    const answer = await call<WireD1ExecAnswer>(D1_OPS.exec, sessions.get(this)!.binding, sqlText(query));
    return { count: answer.count, duration: answer.duration };
  }

  /** A session: queries in it see at least what the bookmark names (one primary here: always). */
  withSession(constraintOrBookmark?: unknown): D1DatabaseSession {
    let value = constraintOrBookmark === undefined || constraintOrBookmark === null ? '' : String(constraintOrBookmark).trim();
    if (value === '') value = FIRST_UNCONSTRAINED;
    return new D1DatabaseSession(constructToken, new SessionState(sessions.get(this)!.binding, value, true));
  }

  /** @deprecated by Cloudflare; the database as a SQLite file. */
  async dump(): Promise<ArrayBuffer> {
    return call<ArrayBuffer>(D1_OPS.dump, sessions.get(this)!.binding);
  }

  get [Symbol.toStringTag](): string {
    return 'D1Database';
  }
}

/** env.NAME for a `d1` binding. */
export function makeD1Binding(name: string): D1Database {
  return new D1Database(constructToken, name);
}
