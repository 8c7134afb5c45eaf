// The server's side of the D1 executor processes (executor-process.ts), on the shared executor
// (src/store/executor-processes.ts) as a pool: a request leaves no state in its process, so any
// free process takes the next one (one at a time per database, so a database's queries stay in
// order as on D1), served fairly across the tenants (accounts, workers) that made them, and no
// tenant may hold every process: a neighbour's query never waits behind a tenant's long one
// (unless several tenants' long ones hold them all). Each gets
// D1's deadline; past it the process is killed (SQLite cannot be interrupted from outside), the
// request fails with a D1 error naming the limit, and the next request starts a fresh process.
// What was committed before the kill stays committed. A query is also ended when the invocation
// that made it ends over a limit (nobody is left to take the answer).
import { ExecutorProcesses, childEntry, type ExecutorReply as Reply, type JobEnd, type Tenant } from '../../src/store/executor-processes.js';
import type { D1EngineOptions } from './engine.js';
import type { ExecutorReply, ExecutorRequest } from './executor-messages.js';

/** An error the database answered (the guest sees `D1_ERROR: <message>`). */
export class D1Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'D1Error';
  }
}

/** D1's own maximum SQL query duration, the default deadline. */
export const D1_QUERY_MS_DEFAULT = 30_000;
/** The most an operator may allow one query (--d1-query-ms): ten times D1's own. */
export const D1_QUERY_MS_MAX = 300_000;

export interface D1ExecutorOptions {
  /** executor processes (default 2) */
  processes?: number;
  /** one request's deadline, ms (default 30 s, D1's own; at most D1_QUERY_MS_MAX) */
  timeoutMs?: number;
  /** requests waiting per process before new ones are refused (default 1000) */
  maxQueued?: number;
  /** one worker's requests waiting per process before its new ones are refused (default 100) */
  maxQueuedPerWorker?: number;
  /** one account's requests waiting per process before its new ones are refused (default 400) */
  maxQueuedPerAccount?: number;
}

/** Who a request is for: the tenant whose turn it takes, and the invocation that waits for it. */
export interface D1Caller {
  tenant: Tenant;
  /** aborted when the invocation ends over a limit: the request is ended with it */
  signal?: AbortSignal;
  /** told the executor CPU the request took (ms), ended requests included: metered to the invocation */
  charge?(cpuMs: number): void;
}

type Request = ExecutorRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/** Why `timeoutMs` cannot be a D1 query deadline, or null. */
export function queryMsError(timeoutMs: unknown): string | null {
  if (typeof timeoutMs === 'number' && Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= D1_QUERY_MS_MAX) return null;
  return `a D1 query deadline is a whole number of ms from 1 to ${D1_QUERY_MS_MAX}`;
}

export class D1Executor {
  readonly #processes: ExecutorProcesses;
  readonly #timeoutMs: number;

  constructor(options: D1ExecutorOptions = {}) {
    const timeoutMs = (this.#timeoutMs = options.timeoutMs ?? D1_QUERY_MS_DEFAULT);
    const invalid = queryMsError(timeoutMs);
    if (invalid) throw new RangeError(`${invalid} (got ${String(timeoutMs)})`);
    const ended = (reason: JobEnd, _cpuMs: number, cap?: number): Error => {
      if (reason === 'timeout') return new D1Error(`D1 DB's query exceeded the time limit of ${timeoutMs} ms and was ended; nothing it wrote was committed: SQLITE_INTERRUPT`);
      if (reason === 'abandoned') return new D1Error('the invocation that made this D1 query ended, and so was the query; nothing it wrote was committed: SQLITE_INTERRUPT');
      if (reason === 'closed') return new D1Error('the D1 executor is shut down');
      if (reason === 'busy') return new D1Error(`D1 DB is overloaded. Requests queued for too long. (${cap} queries wait on this server)`);
      if (reason === 'worker-busy') return new D1Error(`D1 DB is overloaded. Too many queries from this worker are waiting (at most ${cap}); await some before starting more`);
      if (reason === 'account-busy') return new D1Error(`D1 DB is overloaded. Too many queries from this account are waiting (at most ${cap}); await some before starting more`);
      return new D1Error('the D1 executor stopped while running this query; it was not committed');
    };
    this.#processes = new ExecutorProcesses(childEntry(import.meta.url, 'executor-process.js'), {
      processes: options.processes,
      placement: 'pool',
      maxQueued: options.maxQueued,
      maxQueuedPerWorker: options.maxQueuedPerWorker,
      maxQueuedPerAccount: options.maxQueuedPerAccount,
      ended,
    });
  }

  /** Run a request against the database file `path` (always on the same process), for `caller` (turns, abandon, metering). */
  async run(
    path: string,
    request: Request extends infer R ? (R extends { path: string } ? Omit<R, 'path'> : never) : never,
    caller?: D1Caller,
  ): Promise<unknown> {
    const bound = { timeoutMs: this.#timeoutMs, tenant: caller?.tenant, abandon: caller?.signal, charge: caller?.charge };
    const { reply } = await this.#processes.run<ExecutorReply & Reply>(path, { ...request, path }, bound);
    if ('error' in reply) throw reply.error.d1 ? new D1Error(reply.error.message) : new Error(`D1 executor: ${reply.error.message}`);
    return reply.ok;
  }

  /** Close the database file `path` in every process that may have it open (before it is deleted). */
  async closeFile(path: string): Promise<void> {
    await this.#processes.runOnEach(path, { op: 'close', path });
  }

  close(): void {
    this.#processes.close();
  }
}

export type { D1EngineOptions, Tenant };
