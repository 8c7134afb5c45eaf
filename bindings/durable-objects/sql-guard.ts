// What a Durable Object's own SQL may do. The query runs on the host against the object's own
// file, so statements that reach outside it (ATTACH opens any file, VACUUM INTO writes one),
// change how it is made durable (most PRAGMAs), or manage transactions behind the storage API's
// back are refused by name, as Cloudflare refuses them; so are the internal `_cf_` tables.
import { DO_LIMITS } from './protocol.js';
import { StorageError } from './errors.js';

/** PRAGMAs Cloudflare allows in Durable Object SQL (they read, or only check). */
const ALLOWED_PRAGMAS = new Set(['table_info', 'table_xinfo', 'table_list', 'index_list', 'index_info', 'index_xinfo', 'foreign_key_list', 'foreign_keys', 'defer_foreign_keys', 'quick_check', 'integrity_check', 'optimize', 'case_sensitive_like', 'ignore_check_constraints', 'legacy_alter_table', 'recursive_triggers', 'reverse_unordered_selects']);

/** workerd's words (its SQLite authorizer's). */
const NOT_AUTHORIZED = 'not authorized: SQLITE_AUTH';
const USE_TRANSACTION_API =
  "To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.";

const REFUSED_STATEMENTS: Record<string, string> = {
  ATTACH: NOT_AUTHORIZED,
  DETACH: NOT_AUTHORIZED,
  VACUUM: NOT_AUTHORIZED,
  BEGIN: USE_TRANSACTION_API,
  COMMIT: USE_TRANSACTION_API,
  END: USE_TRANSACTION_API,
  ROLLBACK: USE_TRANSACTION_API,
  SAVEPOINT: USE_TRANSACTION_API,
  RELEASE: USE_TRANSACTION_API,
};

/** The query's statements, each checked; throws a StorageError naming what is refused. */
export function checkedSql(query: unknown): string[] {
  if (typeof query !== 'string') throw new StorageError('sql.exec(): the query must be a string', 'TypeError');
  if (Buffer.byteLength(query) > DO_LIMITS.maxSqlBytes) throw new StorageError(`sql.exec(): the statement is longer than ${DO_LIMITS.maxSqlBytes} bytes`, 'RangeError');
  const statements = splitStatements(query);
  if (statements.length === 0) throw new StorageError('sql.exec(): the query holds no statement', 'Error');
  for (const statement of statements) {
    const words = keywords(statement);
    const first = words[0] ?? '';
    const refused = REFUSED_STATEMENTS[first];
    if (refused) throw new StorageError(refused, 'Error');
    if (first === 'PRAGMA') {
      const pragma = (words[1] ?? '').toLowerCase().replace(/^main\./, '');
      if (!ALLOWED_PRAGMAS.has(pragma)) throw new StorageError(NOT_AUTHORIZED, 'Error');
    }
    // The internal tables (the key-value API's _cf_KV) are not the object's SQL's to touch.
    if (/_cf_/i.test(stripLiterals(statement))) throw new StorageError(NOT_AUTHORIZED, 'Error');
    // VACUUM INTO and ATTACH can only begin a statement; load_extension() is disabled by SQLite's default.
  }
  return statements;
}

/** A bound parameter as better-sqlite3 takes it. */
export function sqlValue(value: unknown): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'string' || typeof value === 'bigint') return value;
  // As workerd binds them (as text).
  if (typeof value === 'boolean') return String(value);
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new StorageError(`sql.exec(): cannot bind a value of type ${value === undefined ? 'undefined' : typeof value}`, 'TypeError');
}

/**
 * The statement's leading keywords (upper-cased; comments skipped), after any EXPLAIN [QUERY PLAN]
 * prefix: SQLite applies many PRAGMAs while it prepares a statement, so `EXPLAIN PRAGMA x = y`
 * sets x as the bare PRAGMA would.
 */
function keywords(statement: string): string[] {
  const text = statement
    .replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, ' ')
    .trim()
    .replace(/^EXPLAIN\s+(?:QUERY\s+PLAN\s+)?/i, '');
  return (text.match(/^[A-Za-z_]+(?:\s*[A-Za-z_.]+)?/)?.[0] ?? '').split(/[\s]+/).map((w, i) => (i === 0 ? w.toUpperCase() : w));
}

function stripLiterals(statement: string): string {
  return statement.replace(/'(?:[^']|'')*'/g, "''");
}

/**
 * Split at semicolons outside string literals, quoted names, comments, and the BEGIN ... END body
 * of CREATE TRIGGER. Empty statements are dropped.
 */
export function splitStatements(query: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  let triggerDepth = 0;
  const n = query.length;
  const wordAt = (at: number) => /^[A-Za-z_]+/.exec(query.slice(at, at + 16))?.[0]?.toUpperCase() ?? '';
  const isWordStart = (at: number) => at === 0 || !/[A-Za-z0-9_$]/.test(query[at - 1]);
  let isTrigger = false;
  while (i < n) {
    const c = query[i];
    if (c === "'" || c === '"' || c === '`') {
      i++;
      while (i < n && !(query[i] === c && query[i + 1] !== c)) i += query[i] === c ? 2 : 1;
      i++;
    } else if (c === '[') {
      while (i < n && query[i] !== ']') i++;
      i++;
    } else if (c === '-' && query[i + 1] === '-') {
      while (i < n && query[i] !== '\n') i++;
    } else if (c === '/' && query[i + 1] === '*') {
      const end = query.indexOf('*/', i + 2);
      i = end === -1 ? n : end + 2;
    } else if (c === ';' && triggerDepth === 0) {
      const text = query.slice(start, i).trim();
      if (text) out.push(text);
      start = i + 1;
      i++;
      isTrigger = false;
    } else if (/[A-Za-z_]/.test(c) && isWordStart(i)) {
      const word = wordAt(i);
      if (word === 'TRIGGER' && /^\s*CREATE\b/i.test(query.slice(start, i).replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, ' '))) isTrigger = true;
      if (isTrigger && word === 'BEGIN') triggerDepth++;
      if (isTrigger && word === 'END' && triggerDepth > 0) triggerDepth--;
      i += Math.max(1, word.length);
    } else {
      i++;
    }
  }
  const rest = query.slice(start).trim();
  if (rest) out.push(rest);
  return out;
}
