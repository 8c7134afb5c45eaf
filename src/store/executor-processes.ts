// Child processes that own SQLite files and run every statement on them, so the serving thread
// never runs SQL (D1's executors, Durable Object storage). Work is sharded by a key (a database
// file, an object) over a few processes, so one key always lands on the same process, or pooled
// (any free process, one job per key at a time: see `placement`), and each process runs one job
// at a time. Waiting jobs are served fairly across tenants (fair-queue.ts:
// round-robin over accounts, then over each account's workers; in order within one worker), and
// each worker and account may have only so many waiting: one tenant's flood is refused by name
// and delays a neighbour by at most one of its jobs per turn.
//
// Why processes and not worker threads: SQLite cannot be interrupted from outside here (neither
// better-sqlite3 nor node:sqlite exposes sqlite3_interrupt or a progress handler), and a worker
// thread's terminate() only stops JavaScript: a thread inside one long sqlite3_step keeps burning
// its core until the statement ends, which for a recursive CTE may be never. A process is ended
// with SIGKILL at once. What was committed before the kill stays committed (WAL +
// synchronous=FULL); what was not never was.
//
// Each job may carry a bound: a wall-time deadline, a CPU budget (the process's CPU read from
// /proc while the job runs; where there is no /proc, its wall time stands in, which can only end
// a job early, never late), and a promise whose rejection means the waiting side gave up (its
// invocation hit a limit). Past any of them the process is killed, the job fails with the error
// the bound names, and the next job starts a fresh process. Only the job that ran is failed: the
// others waiting (a neighbour's too) stay queued and run on the fresh process.
import { fork, type ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FairQueue, type Tenant } from './fair-queue.js';
import { DEFAULT_ACCOUNT } from '../model/accounts.js';

export type { Tenant };

/** Why a job was ended before it answered ('busy': refused, too many jobs wait on the process
 *  already; 'worker-busy' / 'account-busy': too many of this worker's / account's jobs wait). */
export type JobEnd = 'timeout' | 'cpu' | 'abandoned' | 'exited' | 'closed' | 'busy' | 'worker-busy' | 'account-busy';

export interface JobBound {
  /** whose job it is, for fair turns and the per-tenant caps (absent: the operator's own work) */
  tenant?: Tenant;
  /** wall ms the job may run once it started */
  timeoutMs?: number;
  /** CPU ms the job may use */
  cpuMs?: number;
  /** aborted when the submitter gives up on the job */
  abandon?: AbortSignal;
  /** told the CPU the job took (ms) as it settles, an ended job's too: synchronously, so an
   *  invocation that ends (and is recorded) right as its job is ended has it counted */
  charge?(cpuMs: number): void;
  /** a lease the job needs (a Durable Object's placement): checked when the job starts, not when
   *  it was submitted (it may wait behind others past the lease), and the job is ended when the
   *  lease lapses while it runs. `check()` throws the error the job fails with. */
  fence?: { validUntil(): number; check(): void };
}

/** What a child sends once, when it is ready for jobs (startExecutorChild). */
interface ReadyMessage {
  ready: true;
}

/** Every reply carries the id of its job; `cpuUs` is the CPU the child spent on it. */
export interface ExecutorReply {
  id: number;
  cpuUs?: number;
}

export interface ExecutorOptions {
  /** processes (default 2) */
  processes?: number;
  /** 'shard' (default): a key always runs on the same process, which may hold state for it
   *  between jobs (a Durable Object's open transaction). 'pool': any free process takes the next
   *  job, one job per key at a time, and one tenant never holds every process at once, so a
   *  neighbour's job does not wait behind a tenant's long one; only for jobs that leave no state
   *  in their process (D1's), and the caps below are then the pool's. */
  placement?: 'shard' | 'pool';
  /** jobs waiting per process before new ones are refused (default 1000) */
  maxQueued?: number;
  /** jobs of one worker waiting per process before its new ones are refused (default 100) */
  maxQueuedPerWorker?: number;
  /** jobs of one account waiting per process before its new ones are refused (default 400; not the
   *  default account, where each worker is a tenant of its own) */
  maxQueuedPerAccount?: number;
  /** the error a job fails with when it cannot run or was ended (cpuMs: what it used by then;
   *  cap: for the busy reasons, the number of waiting jobs that was reached) */
  ended(reason: JobEnd, cpuMs: number, cap?: number): Error;
}

/** A job's answer as the child sent it, and the CPU it took (ms). */
export interface JobResult<R> {
  reply: R;
  cpuMs: number;
}

const OPERATOR: Tenant = { account: '', worker: '' };

interface Job {
  key: string;
  request: object;
  tenant: Tenant;
  bound: JobBound | undefined;
  abandoned: boolean;
  /** only this process may run it (runOnEach) */
  pinned: ExecutorSlot | null;
  /** the process running it, once started */
  slot: ExecutorSlot | null;
  resolve(value: JobResult<ExecutorReply>): void;
  reject(error: Error): void;
}

interface Running {
  job: Job;
  id: number;
  startedAt: number;
  cpuAtStart: number | null;
  timers: NodeJS.Timeout[];
}

/** Where a child's code is: built JS beside `moduleUrl`, or under dist/ when that runs from sources. */
export function childEntry(moduleUrl: string, file: string): string {
  const here = fileURLToPath(moduleUrl);
  const beside = here.replace(/[^\\/]+$/, file);
  if (here.endsWith('.js')) return beside;
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const built = `${root}dist/${beside.slice(root.length)}`;
  if (!existsSync(built)) throw new Error(`${built} is missing; run npm run build`);
  return built;
}

/** /proc counts CPU in clock ticks (USER_HZ, 100 on Linux): a reading may be up to one tick ahead. */
const TICK_MS = 10;

/** ms of CPU the process has used so far (utime + stime), or null where /proc cannot tell. */
function processCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 14 and 15 of stat(5), in clock ticks (USER_HZ, 100 on Linux)
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return null;
  }
}

class ExecutorSlot {
  #child: ChildProcess | null = null;
  /** the child has loaded and said so: CPU it uses from then on is its jobs' */
  #childReady = false;
  /** a started child kept ready to take over at once, once this slot has lost one (see pump) */
  #spare: ChildProcess | null = null;
  #spareReady = false;
  #current: Running | null = null;
  #nextId = 1;
  #closed = false;
  /** how many processes this slot has lost (killed or exited): state they held is gone */
  generation = 0;

  constructor(
    private readonly entry: string,
    private readonly options: Settings,
    private readonly scheduler: Scheduler,
  ) {}

  get idle(): boolean {
    return this.#current === null && !this.#closed;
  }

  #spawn(): ChildProcess {
    const child = fork(this.entry, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    child.on('message', (reply: ExecutorReply | ReadyMessage) => {
      if (child === this.#spare) this.#spareReady ||= 'ready' in reply;
      else if ('ready' in reply) this.#ready(child);
      else this.#answer(child, reply);
    });
    // A child killed from outside (the OOM killer) may close its channel before its 'exit' is
    // seen: a send then fails, and without these listeners that failure is an unhandled 'error'
    // that ends the whole server. Any of the three means the same: the child is gone.
    const gone = () => {
      if (child !== this.#spare) return this.#lost(child);
      this.#spare = null;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    child.on('exit', gone);
    child.on('disconnect', gone);
    child.on('error', gone);
    // An idle executor must not keep the server's event loop alive.
    child.unref();
    (child as unknown as { channel?: { unref(): void } }).channel?.unref();
    return child;
  }

  /** Start the next job the scheduler gives this process, if it is free. */
  pump(): void {
    if (this.#current || this.#closed) return;
    let job: Job | undefined;
    while ((job = this.scheduler.next(this)) && (job.abandoned || !this.#fenceHolds(job)));
    if (!job) return;
    job.slot = this;
    this.scheduler.started(job);
    if (!this.#child) {
      // After a process was lost (a job killed over its bound), the next one is already started:
      // the jobs that waited behind the killed one, a neighbour's, do not wait for a start too.
      if (this.#spare) [this.#child, this.#childReady, this.#spare] = [this.#spare, this.#spareReady, null];
      else [this.#child, this.#childReady] = [this.#spawn(), false];
      if (this.generation > 0 && !this.#closed) [this.#spare, this.#spareReady] = [this.#spawn(), false];
    }
    const child = this.#child;
    const id = this.#nextId++;
    const running: Running = { job, id, startedAt: performance.now(), cpuAtStart: null, timers: [] };
    this.#current = running;
    const { timeoutMs, cpuMs } = job.bound ?? {};
    if (this.#childReady) running.cpuAtStart = processCpuMs(child.pid);
    if (timeoutMs !== undefined) running.timers.push(setTimeout(() => this.#kill(running, 'timeout'), Math.max(0, timeoutMs)));
    if (cpuMs !== undefined) {
      // CPU cannot outrun wall time: nothing to read before the budget has passed on the clock.
      running.timers.push(setTimeout(() => this.#checkCpu(running), Math.max(1, cpuMs)));
    }
    if (job.bound?.fence) this.#watchFence(running, job.bound.fence);
    (child as unknown as { channel?: { ref(): void } }).channel?.ref();
    child.send({ ...job.request, id }, (error) => {
      if (error) this.#lost(child);
    });
  }

  /** The child is gone (exited, killed, its channel closed): its job failed, the next one gets a fresh child. */
  #lost(child: ChildProcess): void {
    if (this.#child !== child) return;
    this.#child = null;
    this.generation++;
    // (one whose channel closed may still live: it must not keep a file open beside its successor)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const current = this.#current;
    if (current) this.#fail(current, 'exited');
    this.pump();
  }

  /** Whether the job's lease still holds as it is about to start; if not it fails with the lease's error. */
  #fenceHolds(job: Job): boolean {
    try {
      job.bound?.fence?.check();
      return true;
    } catch (error) {
      job.reject(error as Error);
      return false;
    }
  }

  /** End the running job when its lease lapses (a renewal moves the deadline on). */
  #watchFence(running: Running, fence: NonNullable<JobBound['fence']>): void {
    running.timers.push(
      setTimeout(() => {
        if (this.#current !== running) return;
        try {
          fence.check();
        } catch (error) {
          this.#kill(running, 'exited', error as Error);
          return;
        }
        this.#watchFence(running, fence);
      }, Math.max(1, fence.validUntil() - performance.now())),
    );
  }

  #ready(child: ChildProcess): void {
    if (child !== this.#child) return;
    this.#childReady = true;
    // A job sent while the child was starting counts its CPU from now.
    if (this.#current) {
      this.#current.cpuAtStart = processCpuMs(child.pid);
      this.#current.startedAt = performance.now();
    }
  }

  /** CPU the running job has surely used so far, ms: a /proc reading less one tick (the job
   *  may have started just before a tick), or its wall time where /proc cannot tell. */
  #cpuSoFar(running: Running): number {
    if (!this.#childReady) return 0;
    const now = processCpuMs(this.#child?.pid);
    if (now === null || running.cpuAtStart === null) return performance.now() - running.startedAt;
    return Math.max(0, now - running.cpuAtStart - TICK_MS);
  }

  #checkCpu(running: Running): void {
    if (this.#current !== running) return;
    const budget = running.job.bound!.cpuMs!;
    const used = this.#cpuSoFar(running);
    if (used >= budget) {
      this.#kill(running, 'cpu');
      return;
    }
    running.timers.push(setTimeout(() => this.#checkCpu(running), Math.max(2, budget - used)));
  }

  /** The submitter gave up on `job`, which this process runs: end it. */
  abandonRunning(job: Job): void {
    if (this.#current?.job === job) this.#kill(this.#current, 'abandoned');
  }

  #answer(child: ChildProcess, reply: ExecutorReply): void {
    const current = this.#current;
    if (child !== this.#child || !current || current.id !== reply.id) return;
    this.#settle(current);
    (child as unknown as { channel?: { unref(): void } }).channel?.unref();
    const cpuMs = (reply.cpuUs ?? 0) / 1000;
    current.job.bound?.charge?.(cpuMs);
    current.job.resolve({ reply, cpuMs });
    this.pump();
  }

  #settle(running: Running): void {
    for (const timer of running.timers) clearTimeout(timer);
    if (this.#current === running) this.#current = null;
    this.scheduler.finished(running.job);
  }

  #fail(running: Running, reason: JobEnd, error?: Error): void {
    // (read while the process still lives: one that exited or is shutting down cannot be read; one
    // ended with an error of its own, a lapsed lease, is about to be killed and still can)
    const cpuMs = (reason === 'exited' && !error) || reason === 'closed' ? 0 : this.#cpuSoFar(running);
    this.#settle(running);
    running.job.bound?.charge?.(cpuMs);
    running.job.reject(error ?? this.options.ended(reason, cpuMs));
  }

  /** End the running job over its bound: SQLite cannot be interrupted, its process can. */
  #kill(running: Running, reason: JobEnd, error?: Error): void {
    if (this.#current !== running) return;
    const child = this.#child;
    this.#fail(running, reason, error);
    if (child) {
      this.#child = null;
      this.generation++;
      child.kill('SIGKILL');
    }
    this.pump();
  }

  close(): void {
    this.#closed = true;
    const spare = this.#spare;
    this.#spare = null;
    if (spare?.connected) spare.disconnect();
    else spare?.kill('SIGKILL');
    const child = this.#child;
    this.#child = null;
    if (this.#current) {
      this.#fail(this.#current, 'closed');
      // A child inside a statement would not see the disconnect until the statement ends (maybe never).
      child?.kill('SIGKILL');
    } else if (child?.connected) {
      // Disconnecting lets an idle child close its databases cleanly and exit.
      child.disconnect();
    }
  }
}

type Settings = Required<Omit<ExecutorOptions, 'ended' | 'placement'>> & Pick<ExecutorOptions, 'ended'>;

/**
 * Which waiting job runs next, and where: the waiting jobs of one process ('shard': one scheduler
 * per process) or of all of them ('pool': one scheduler for all). In a pool a key runs one job at
 * a time (a database's queries stay in order, as on D1), and no worker or account may hold every
 * process: a neighbour always finds one free of it (the default account, which holds every worker
 * of a server without accounts, is held to the worker cap only).
 */
class Scheduler {
  readonly #queue = new FairQueue<Job>();
  readonly slots: ExecutorSlot[] = [];
  readonly #runningKeys = new Set<string>();
  readonly #running = new Map<string, number>();
  #closed = false;

  constructor(
    private readonly options: Settings,
    private readonly pooled: boolean,
  ) {}

  submit(key: string, request: object, bound: JobBound | undefined, pinned: ExecutorSlot | null = null): Promise<JobResult<ExecutorReply>> {
    if (this.#closed) return Promise.reject(this.options.ended('closed', 0));
    const tenant = bound?.tenant ?? OPERATOR;
    // The tenant's own caps first: a flood is refused to the one who floods, and the process's
    // cap is only reached when many tenants wait at once.
    const { maxQueuedPerWorker, maxQueuedPerAccount, maxQueued } = this.options;
    if (tenant !== OPERATOR && this.#queue.waiting(tenant.account, tenant.worker) >= maxQueuedPerWorker) return Promise.reject(this.options.ended('worker-busy', 0, maxQueuedPerWorker));
    // (the default account holds every worker of a server without accounts: there each worker is the tenant)
    if (tenant !== OPERATOR && tenant.account !== DEFAULT_ACCOUNT && this.#queue.waiting(tenant.account) >= maxQueuedPerAccount) return Promise.reject(this.options.ended('account-busy', 0, maxQueuedPerAccount));
    if (this.#queue.size >= maxQueued) return Promise.reject(this.options.ended('busy', 0, maxQueued));
    const signal = bound?.abandon;
    if (signal?.aborted) return Promise.reject(this.options.ended('abandoned', 0));
    return new Promise((resolve, reject) => {
      // The listener goes when the job settles: a long invocation makes many calls.
      const onAbort = () => this.#abandon(job);
      const settled = () => signal?.removeEventListener('abort', onAbort);
      const job: Job = {
        key,
        request,
        tenant,
        bound,
        abandoned: false,
        pinned,
        slot: null,
        resolve: (value) => (settled(), resolve(value)),
        reject: (error) => (settled(), reject(error)),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(tenant, job);
      this.#kick();
    });
  }

  /** The next job `slot` may run, taken out of the queue. */
  next(slot: ExecutorSlot): Job | undefined {
    if (!this.pooled) return this.#queue.shift();
    const cap = Math.max(1, this.slots.length - 1);
    return this.#queue.take(
      (job) =>
        (job.pinned === null || job.pinned === slot) &&
        !this.#runningKeys.has(job.key) &&
        (this.#running.get(workerOf(job.tenant)) ?? 0) < cap &&
        (job.tenant.account === DEFAULT_ACCOUNT || (this.#running.get(job.tenant.account) ?? 0) < cap),
    );
  }

  started(job: Job): void {
    if (!this.pooled) return;
    this.#runningKeys.add(job.key);
    for (const holder of [workerOf(job.tenant), job.tenant.account]) this.#running.set(holder, (this.#running.get(holder) ?? 0) + 1);
  }

  /** `job` settled on its process: others may now run its key, and its tenant's turn is free. */
  finished(job: Job): void {
    if (!this.pooled || job.slot === null || !this.#runningKeys.delete(job.key)) return;
    for (const holder of [workerOf(job.tenant), job.tenant.account]) {
      const left = this.#running.get(holder)! - 1;
      if (left === 0) this.#running.delete(holder);
      else this.#running.set(holder, left);
    }
    // (after the process that finished has had its own turn at the queue)
    queueMicrotask(() => this.#kick());
  }

  #kick(): void {
    for (const slot of this.slots) if (slot.idle) slot.pump();
  }

  #abandon(job: Job): void {
    job.abandoned = true;
    if (job.slot) job.slot.abandonRunning(job);
    else if (this.#queue.remove(job.tenant, job)) job.reject(this.options.ended('abandoned', 0));
  }

  close(): void {
    this.#closed = true;
    for (const job of this.#queue.drain()) job.reject(this.options.ended('closed', 0));
    for (const slot of this.slots) slot.close();
  }
}

const workerOf = (tenant: Tenant) => `${tenant.account}\u0000${tenant.worker}`;

/** A few executor processes running `entry`, with jobs sharded by key (or pooled, see `placement`). */
export class ExecutorProcesses {
  readonly #schedulers: Scheduler[];

  constructor(entry: string, options: ExecutorOptions) {
    const settings: Settings = {
      processes: Math.max(1, options.processes ?? 2),
      maxQueued: options.maxQueued ?? 1000,
      maxQueuedPerWorker: options.maxQueuedPerWorker ?? 100,
      maxQueuedPerAccount: options.maxQueuedPerAccount ?? 400,
      ended: options.ended,
    };
    const pooled = options.placement === 'pool';
    const make = (scheduler: Scheduler) => scheduler.slots.push(new ExecutorSlot(entry, settings, scheduler));
    if (pooled) {
      const scheduler = new Scheduler(settings, true);
      for (let i = 0; i < settings.processes; i++) make(scheduler);
      this.#schedulers = [scheduler];
    } else {
      this.#schedulers = Array.from({ length: settings.processes }, () => new Scheduler(settings, false));
      for (const scheduler of this.#schedulers) make(scheduler);
    }
  }

  #scheduler(key: string): Scheduler {
    return this.#schedulers[createHash('sha1').update(key).digest().readUInt32BE(0) % this.#schedulers.length];
  }

  /** Run a job on the process `key` belongs to (in a pool: the next free one); resolves to the child's reply (an error reply too). */
  run<R extends ExecutorReply>(key: string, request: object, bound?: JobBound): Promise<JobResult<R>> {
    return this.#scheduler(key).submit(key, request, bound) as Promise<JobResult<R>>;
  }

  /** Run a job on every process that may hold state for `key` (in a pool: each of them, in turn
   *  with the key's other jobs), e.g. to close a file before it is deleted. */
  async runOnEach<R extends ExecutorReply>(key: string, request: object): Promise<JobResult<R>[]> {
    const scheduler = this.#scheduler(key);
    return Promise.all(scheduler.slots.map((slot) => scheduler.submit(key, request, undefined, scheduler.slots.length > 1 ? slot : null) as Promise<JobResult<R>>));
  }

  /** How many processes `key`'s process (in a pool: the pool) has lost so far: state a process held for it is gone when this changes. */
  generation(key: string): number {
    return this.#scheduler(key).slots.reduce((sum, slot) => sum + slot.generation, 0);
  }

  close(): void {
    for (const scheduler of this.#schedulers) scheduler.close();
  }
}

/**
 * For the child, once its modules are loaded: say so (the CPU a job uses is counted from then on,
 * not the process's start-up), and end this process when the server that forked it is gone. The
 * IPC channel's 'disconnect' does that while the child is idle, but a child inside one long
 * statement never gets to see it, and would burn its core as an orphan until the statement ends.
 * A small thread watches the parent instead and kills the whole process.
 */
export function startExecutorChild(): void {
  // (a spare the server closes while it starts finds the channel gone: it then just exits)
  if (process.connected) process.send?.({ ready: true } satisfies ReadyMessage, undefined, undefined, () => {});
  const watcher = new Worker(
    `const parent = process.ppid;
     setInterval(() => { if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL'); }, 500);`,
    { eval: true },
  );
  watcher.unref();
}
