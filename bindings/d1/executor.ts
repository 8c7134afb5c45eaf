// The server's side of the D1 executor processes (executor-process.ts): requests are sharded by
// database file over a few processes, sent one at a time per process, and each gets a deadline;
// past it the process is killed (SQLite cannot be interrupted from outside), the request fails
// with a D1 error naming the limit, and the next request starts a fresh process. What was
// committed before the kill stays committed (WAL + synchronous=FULL); what was not never was.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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

interface Job {
  request: Request;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** Where the child's code is: built JS beside this file, or dist/ when this runs from sources. */
function childEntry(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return here.replace(/executor\.js$/, 'executor-process.js');
  const built = here.replace(/([\\/])bindings([\\/]d1[\\/])executor\.ts$/, '$1dist$1bindings$2executor-process.js');
  if (!existsSync(built)) throw new Error(`D1 executor: ${built} is missing; run npm run build`);
  return built;
}

class ExecutorSlot {
  #child: ChildProcess | null = null;
  #queue: Job[] = [];
  #current: { job: Job; id: number; timer: NodeJS.Timeout } | null = null;
  #nextId = 1;
  #closed = false;

  constructor(private readonly options: Required<D1ExecutorOptions>) {}

  submit(request: Request): Promise<unknown> {
    if (this.#closed) return Promise.reject(new D1Error('the D1 executor is shut down'));
    if (this.#queue.length >= this.options.maxQueued) return Promise.reject(new D1Error('too many D1 queries waiting on this server; try again'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#pump();
    });
  }

  #spawn(): ChildProcess {
    const child = fork(childEntry(), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    child.on('message', (reply: ExecutorReply) => this.#answer(child, reply));
    child.on('exit', () => {
      if (this.#child !== child) return;
      this.#child = null;
      const current = this.#current;
      if (current) {
        clearTimeout(current.timer);
        this.#current = null;
        current.job.reject(new D1Error('the D1 executor stopped while running this query; it was not committed'));
      }
      this.#pump();
    });
    // An idle executor must not keep the server's event loop alive.
    child.unref();
    (child as unknown as { channel?: { unref(): void } }).channel?.unref();
    return child;
  }

  #pump(): void {
    if (this.#current || this.#closed) return;
    const job = this.#queue.shift();
    if (!job) return;
    const child = (this.#child ??= this.#spawn());
    const id = this.#nextId++;
    const timer = setTimeout(() => this.#expire(child, id), this.options.timeoutMs);
    this.#current = { job, id, timer };
    (child as unknown as { channel?: { ref(): void } }).channel?.ref();
    child.send({ ...job.request, id } as ExecutorRequest);
  }

  #answer(child: ChildProcess, reply: ExecutorReply): void {
    const current = this.#current;
    if (child !== this.#child || !current || current.id !== reply.id) return;
    clearTimeout(current.timer);
    this.#current = null;
    (child as unknown as { channel?: { unref(): void } }).channel?.unref();
    if ('error' in reply) current.job.reject(reply.error.d1 ? new D1Error(reply.error.message) : new Error(`D1 executor: ${reply.error.message}`));
    else current.job.resolve(reply.ok);
    this.#pump();
  }

  #expire(child: ChildProcess, id: number): void {
    const current = this.#current;
    if (!current || current.id !== id || child !== this.#child) return;
    this.#current = null;
    this.#child = null;
    child.kill('SIGKILL');
    current.job.reject(new D1Error(`D1 DB's query exceeded the time limit of ${this.options.timeoutMs} ms and was ended; nothing it wrote was committed: SQLITE_INTERRUPT`));
    this.#pump();
  }

  close(): void {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new D1Error('the D1 executor is shut down'));
    if (this.#current) {
      clearTimeout(this.#current.timer);
      this.#current.job.reject(new D1Error('the D1 executor is shut down'));
      this.#current = null;
    }
    // Disconnecting lets the child close its databases cleanly and exit.
    if (this.#child?.connected) this.#child.disconnect();
    this.#child = null;
  }
}

export class D1Executor {
  readonly #slots: ExecutorSlot[];

  constructor(options: D1ExecutorOptions = {}) {
    const settings = { processes: options.processes ?? 2, timeoutMs: options.timeoutMs ?? 30_000, maxQueued: options.maxQueued ?? 1000 };
    this.#slots = Array.from({ length: Math.max(1, settings.processes) }, () => new ExecutorSlot(settings));
  }

  /** Run a request against the database file `path` (always on the same process). */
  run(path: string, request: Request extends infer R ? (R extends { path: string } ? Omit<R, 'path'> : never) : never): Promise<unknown> {
    const shard = createHash('sha1').update(path).digest().readUInt32BE(0) % this.#slots.length;
    return this.#slots[shard].submit({ ...request, path } as Request);
  }

  close(): void {
    for (const slot of this.#slots) slot.close();
  }
}

export type { D1EngineOptions };
