// How an event enters its isolate: synchronously on this thread, in a batch, or asynchronously on
// one of isolated-vm's threads. Entering synchronously saves the thread hand-offs of an async entry
// (most of a light request's cost under load); it is allowed only when no guest code can be
// running on another thread, so this thread never waits behind guest code it cannot limit.
import type ivm from 'isolated-vm';
import type { Invocation } from './invocation.js';

/** Invocations using less CPU than this (on average, recently) are light enough to enter their
 *  isolate synchronously. */
const LIGHT_INVOCATION_CPU_MS = 1;

export interface EntryCounts {
  /** events entered one at a time on this thread */
  sync: number;
  /** events entered in batches, and the batches */
  batched: number;
  batches: number;
  /** events entered on isolated-vm's threads */
  async: number;
}

export class EntryPolicy {
  /** whether an event has entered this isolate yet */
  entered = false;
  /** CPU ms of recent invocations (EWMA): light workers are entered synchronously */
  private recentCpuMs = 0;
  /** a host call arrived for no invocation in flight (a stray continuation): guest code may run on
   *  isolated-vm's threads until nothing is in flight */
  private strayHostCalls = false;
  readonly entries: EntryCounts = { sync: 0, batched: 0, batches: 0, async: 0 };

  constructor(
    private readonly inFlight: ReadonlyMap<number, Invocation>,
    /** with an inspector attached, always asynchronously: a debugger pause or a limit breach while
     *  this thread is inside a synchronous call is what the inspector cannot survive */
    private readonly inspectable: boolean,
    /** the wall-time bound of a synchronous entry: the CPU limit */
    readonly syncTimeoutMs: number,
    /** charge the CPU of a synchronous entry to what ran in it */
    private readonly chargeSync: (invocations: Invocation[]) => void,
    /** a synchronous entry threw: told before its CPU is charged (a memory bomb uses CPU too, and
     *  is to be reported as the memory limit) */
    private readonly failedSync: (invocation: Invocation, error: unknown) => void = () => {},
  ) {}

  get light(): boolean {
    return this.recentCpuMs < LIGHT_INVOCATION_CPU_MS;
  }

  /** An invocation ended having used `cpuMs`; `served` counts it. */
  ended(cpuMs: number, served: number): void {
    this.recentCpuMs = served === 1 ? cpuMs : 0.8 * this.recentCpuMs + 0.2 * cpuMs;
    if (this.inFlight.size === 0) this.strayHostCalls = false;
  }

  /** True when no guest code can be running in the isolate on another thread, now or before this
   *  thread's next entry returns. (An invocation about to enter was never entered, so it is never
   *  `offThread` yet.) */
  onlyThisThread(): boolean {
    if (this.strayHostCalls) return false;
    for (const invocation of this.inFlight.values()) if (invocation.offThread) return false;
    return true;
  }

  /** The guest called the host asynchronously for an invocation; its continuation will run on
   *  isolated-vm's threads. */
  awaitsHost(invocationId: number): void {
    const invocation = this.inFlight.get(invocationId);
    if (invocation) invocation.offThread = true;
    else this.strayHostCalls = true;
  }

  /** Whether a fetch event that arrived with others (`together`) may join a batch instead. */
  mayBatch(together: boolean, hasBody: boolean): boolean {
    return together && !hasBody && this.entered && !this.inspectable && this.light && this.onlyThisThread();
  }

  /**
   * Enter the isolate for an event.
   *
   * - The first entry into a fresh isolate goes in synchronously: isolated-vm's first *async* call
   *   into an isolate waits several milliseconds before it runs, which would be the whole cold
   *   start (bench/README.md).
   * - Later events go in synchronously too when the worker's recent invocations were light (under
   *   LIGHT_INVOCATION_CPU_MS) and no guest code can be running on another thread: every other
   *   invocation in flight was entered synchronously, finished its synchronous part, and waits on
   *   nothing of the host (`offThread`), only for its answer to reach this thread. Then no other
   *   thread holds the isolate's lock. An async entry costs two thread hand-offs and a wake-up of a
   *   second thread: under load that was most of a hello world's cost.
   * - Everything else goes in asynchronously, so heavy workers run in parallel on isolated-vm's
   *   threads and never stall this one.
   * A synchronous entry is bounded by isolated-vm's timeout at the CPU limit (it blocks this thread
   * meanwhile) and is charged exactly the CPU it used; what the handler does after its first await
   * runs on isolated-vm's threads as usual (its host call marks the invocation `offThread`).
   */
  enter(invocation: Invocation, entry: ivm.Reference<Function>, args: unknown[], mayEnterSync = true): Promise<unknown> {
    const first = !this.entered;
    const sync = mayEnterSync && !this.inspectable && (first || (this.light && this.onlyThisThread()));
    this.entered = true;
    if (!sync) {
      invocation.offThread = true;
      this.entries.async++;
      return entry.apply(undefined, args, { result: { promise: true, copy: true } });
    }
    this.entries.sync++;
    try {
      // isolated-vm's timeout is wall time. The first entry into a fresh isolate compiles much of
      // the worker lazily while the pool refills on another core, so its wall time can run well
      // past its CPU time: it gets twice the limit, and the CPU it really used is checked right
      // after (chargeSync).
      const timeout = first ? 2 * this.syncTimeoutMs : this.syncTimeoutMs;
      return entry.applySync(undefined, args, { result: { promise: true, copy: true }, timeout }) as unknown as Promise<unknown>;
    } catch (error) {
      this.failedSync(invocation, error);
      return Promise.reject(error);
    } finally {
      // Nothing else ran in the isolate meanwhile (see onlyThisThread): what the clock moved by
      // is this invocation's. Later samples (watchdog, end) share out only what comes after.
      this.chargeSync([invocation]);
    }
  }
}
