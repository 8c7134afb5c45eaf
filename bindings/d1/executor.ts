// The server's side of the D1 executor processes (executor-process.ts), on the shared executor
// (src/store/executor-processes.ts): requests are sharded by database file, run one at a time per
// process, and each gets D1's deadline; past it the process is killed (SQLite cannot be
// interrupted from outside), the request fails with a D1 error naming the limit, and the next
// request starts a fresh process. What was committed before the kill stays committed.
import { ExecutorProcesses, childEntry, type ExecutorReply as Reply, type JobEnd } from '../../src/store/executor-processes.js';
import type { D1EngineOptions } from './engine.js';
import type { ExecutorReply, ExecutorRequest } from './executor-messages.js';

/** An error the database answered (the guest sees `D1_ERROR: <message>`). */
export class D1Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'D1Error';
  }
}

export interface D1ExecutorOptions {
  /** executor processes (default 2) */
  processes?: number;
  /** one request's deadline (default 30 s, D1's own) */
  timeoutMs?: number;
  /** requests waiting per process before new ones are refused (default 1000) */
  maxQueued?: number;
}

type Request = ExecutorRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class D1Executor {
  readonly #processes: ExecutorProcesses;
  readonly #timeoutMs: number;

  constructor(options: D1ExecutorOptions = {}) {
    const timeoutMs = (this.#timeoutMs = options.timeoutMs ?? 30_000);
    const ended = (reason: JobEnd): Error => {
      if (reason === 'timeout') return new D1Error(`D1 DB's query exceeded the time limit of ${timeoutMs} ms and was ended; nothing it wrote was committed: SQLITE_INTERRUPT`);
      if (reason === 'closed') return new D1Error('the D1 executor is shut down');
      if (reason === 'busy') return new D1Error('too many D1 queries waiting on this server; try again');
      return new D1Error('the D1 executor stopped while running this query; it was not committed');
    };
    this.#processes = new ExecutorProcesses(childEntry(import.meta.url, 'executor-process.js'), { processes: options.processes, maxQueued: options.maxQueued, ended });
  }

  /** Run a request against the database file `path` (always on the same process). */
  async run(path: string, request: Request extends infer R ? (R extends { path: string } ? Omit<R, 'path'> : never) : never): Promise<unknown> {
    const { reply } = await this.#processes.run<ExecutorReply & Reply>(path, { ...request, path }, { timeoutMs: this.#timeoutMs });
    if ('error' in reply) throw reply.error.d1 ? new D1Error(reply.error.message) : new Error(`D1 executor: ${reply.error.message}`);
    return reply.ok;
  }

  close(): void {
    this.#processes.close();
  }
}

export type { D1EngineOptions };
