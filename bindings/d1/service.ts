// D1 for the whole server: where each account's databases live (<data>/d1/<account>/<id>.sqlite,
// so a database id is the account's own name and naming another tenant's id reaches nothing of
// theirs), and the calls the guest, the admin API and the CLI make, all through one executor.
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { D1Error, D1Executor, type D1Caller, type D1ExecutorOptions } from './executor.js';
import type { WireD1ExecAnswer, WireD1QueryAnswer, WireD1Statement } from './protocol.js';
import { D1_LIMITS } from './protocol.js';

export interface D1ServiceOptions extends D1ExecutorOptions {
  /** the server's data directory; databases go under <data>/d1 */
  dataDir: string;
  /** largest a database may grow, bytes (default 500 MB, D1's Free plan size) */
  maxDatabaseBytes?: number;
  /** bytes of rows one call may answer with (default 32 MB) */
  maxResultBytes?: number;
}

/** Which database: the account that owns it and its id within the account. */
export interface D1DatabaseRef {
  account: string;
  id: string;
}

export interface D1DatabaseInfo {
  id: string;
  bytes: number;
}

const DATABASE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const ACCOUNT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Why `id` cannot name a D1 database, or null. */
export function databaseIdError(id: unknown): string | null {
  if (typeof id === 'string' && DATABASE_ID.test(id) && !id.endsWith('.sqlite-wal') && !id.endsWith('.sqlite-shm')) return null;
  return 'a D1 database id is 1-128 letters, digits, "_", "." and "-", starting with a letter or digit (a UUID, or a name)';
}

export class D1Service {
  readonly #executor: D1Executor;
  readonly #root: string;
  readonly #engine: { maxDatabaseBytes: number; maxResultBytes: number };

  constructor(options: D1ServiceOptions) {
    this.#root = join(options.dataDir, 'd1');
    this.#executor = new D1Executor(options);
    this.#engine = { maxDatabaseBytes: options.maxDatabaseBytes ?? 500 * 1024 * 1024, maxResultBytes: options.maxResultBytes ?? 32 * 1024 * 1024 };
  }

  /** The file a database lives in. */
  path(ref: D1DatabaseRef): string {
    if (!ACCOUNT_ID.test(ref.account)) throw new D1Error(`invalid account "${String(ref.account).slice(0, 64)}"`);
    const error = databaseIdError(ref.id);
    if (error) throw new D1Error(`invalid database id "${String(ref.id).slice(0, 64)}": ${error}`);
    return join(this.#root, ref.account, `${ref.id}.sqlite`);
  }

  /** Statements in one transaction (a batch; one statement for prepare().all() and friends). */
  async query(ref: D1DatabaseRef, statements: WireD1Statement[], caller?: D1Caller): Promise<WireD1QueryAnswer> {
    if (statements.length === 0) throw new D1Error('No SQL statements detected.');
    if (statements.length > D1_LIMITS.maxBatchStatements) throw new D1Error(`too many statements in one batch: ${statements.length} (at most ${D1_LIMITS.maxBatchStatements})`);
    return (await this.#executor.run(this.path(ref), { op: 'query', options: this.#engine, statements }, caller)) as WireD1QueryAnswer;
  }

  /** Multi-statement SQL text, statement by statement: line by line as the guest's exec() runs
   *  on D1 (`lines`), or split on semicolons as a .sql file (`cinder d1 execute --file`). */
  async exec(ref: D1DatabaseRef, sql: string, options: { lines?: boolean } = {}, caller?: D1Caller): Promise<WireD1ExecAnswer> {
    return (await this.#executor.run(this.path(ref), { op: 'exec', options: this.#engine, sql, lines: options.lines === true }, caller)) as WireD1ExecAnswer;
  }

  /** The database as a SQLite file image. For a guest (`caller`), an answer like any other: no
   *  larger than the result size limit. The operator's export has no such bound. */
  async dump(ref: D1DatabaseRef, caller?: D1Caller): Promise<Uint8Array> {
    const maxBytes = caller ? this.#engine.maxResultBytes : undefined;
    return (await this.#executor.run(this.path(ref), { op: 'dump', options: this.#engine, maxBytes }, caller)) as Uint8Array;
  }

  /** An account's databases (those that have been written to or opened). */
  list(account: string): D1DatabaseInfo[] {
    const dir = join(this.#root, account);
    if (!ACCOUNT_ID.test(account) || !existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((file) => file.endsWith('.sqlite'))
      .map((file) => {
        const base = join(dir, file);
        const bytes = [base, `${base}-wal`].reduce((sum, f) => sum + (existsSync(f) ? statSync(f).size : 0), 0);
        return { id: file.slice(0, -'.sqlite'.length), bytes };
      })
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  exists(ref: D1DatabaseRef): boolean {
    return existsSync(this.path(ref));
  }

  /** Delete a database and its files; false when there was none. */
  async delete(ref: D1DatabaseRef): Promise<boolean> {
    const path = this.path(ref);
    await this.#executor.closeFile(path);
    if (!existsSync(path)) return false;
    for (const file of [path, `${path}-wal`, `${path}-shm`]) rmSync(file, { force: true });
    return true;
  }

  close(): void {
    this.#executor.close();
  }
}

export { D1Error };
