// Blank isolates made ahead of demand, on isolated-vm's threads. A cold start takes one
// (microseconds) instead of making one (milliseconds, also off this thread: see take). The pool
// sizes itself from the cold-start rate it sees (an exponentially weighted rate of takes, times
// how long a refill takes, within the operator's floor and cap), and refills several isolates at
// once, each built on isolated-vm's threads. Past what the machine can build, cold starts make
// their isolate inline (still off this thread): slower, never failed.
import os from 'node:os';
import { ReadyIsolate } from './ready-isolate.js';
import type { IsolateSource } from './isolate-source.js';
import { whenQuiet } from './quiet.js';

export interface PoolOptions {
  /** isolates kept ready even when nothing cold-starts */
  min: number;
  /** never more than this many blank isolates (memory bound: ~1 MB each) */
  max: number;
  /** memory limit of pooled isolates; workers with another limit bypass the pool */
  memoryMb: number;
  /** false: no pool at all, every cold start makes its isolate (ablation) */
  enabled: boolean;
  /** isolates made with V8 inspector support (cinder dev --inspect; use with enabled: false) */
  inspector?: boolean;
  /** whether requests are being served right now: refills wait for a quiet moment (see scheduleRefill) */
  isBusy?: () => boolean;
  /** the longest a refill waits for a quiet moment (ms) */
  maxRefillDeferMs?: number;
  /** isolates built at once when the pool is below its target (default: one per core, at least 2) */
  parallelBuilds?: number;
  /** false: every refill build waits for a quiet moment, even when the pool is far behind (ablation; see pump) */
  urgentRefill?: boolean;
  /** warm-up rounds per pooled isolate (default WARM_UP_ROUNDS; bench A/Bs) */
  warmUpRounds?: number;
  /** true: refills are built in the background class of isolated-vm's threads (patch 14), below
   *  the cold starts' crossings. Off by default: on a loaded machine it cut the bring-up p99 in
   *  three A/Bs of four but missed the pool 2-4x as often (bench/README.md, round 9). */
  backgroundBuilds?: boolean;
}

export const DEFAULT_POOL: PoolOptions = { min: 4, max: 64, memoryMb: 128, enabled: true };

/** How long a refill waits after a take before building isolates. */
const REFILL_DELAY_MS = 1;

/** A refill waits for no request to be in flight, but by default never longer than this: a pool
 *  that runs dry costs a whole isolate build (~10 ms) on the request path. */
const MAX_REFILL_DEFER_MS = 50;

/** After this many failed warm-ups the pool stops warming (see addOne). */
const MAX_WARM_UP_FAILURES = 3;

/** Time constant of the cold-start rate (s): a burst shows at once, and fades over a few seconds. */
const RATE_TAU_SECONDS = 1;

/** The pool holds what the recent cold-start rate takes over this long at least (s), or over a
 *  refill (build + warm-up, plus the wait for a quiet moment) when that is longer: a burst is
 *  absorbed while the parallel refills catch up. */
const MIN_HORIZON_SECONDS = 0.5;

export interface PoolStats {
  ready: number;
  target: number;
  /** isolates being built and warmed now */
  building: number;
  created: number;
  taken: number;
  misses: number;
  /** the cold-start rate the pool sizes itself from (takes per second, exponentially weighted) */
  ratePerSecond: number;
  /** how long a pooled isolate takes to build and warm (ms, exponentially weighted) */
  refillMs: number;
  /** estimated bytes held by ready isolates */
  bytes: number;
}

export class IsolatePool {
  private readonly ready: ReadyIsolate[] = [];
  private readonly options: PoolOptions;
  private readonly parallelBuilds: number;
  private refillScheduled = false;
  /** isolates being created and warmed: count toward the target so nothing overshoots */
  private warming = 0;
  private closed = false;
  private created = 0;
  private taken = 0;
  private misses = 0;
  /** takes per second, decaying with RATE_TAU_SECONDS (a decaying count of takes / tau) */
  private rate = 0;
  private rateAt = 0;
  /** build + warm-up of one pooled isolate, ms (EWMA); a first guess until measured */
  private refillMs = 15;
  private bytesPerIsolate = 1_000_000;
  private warmUpFailures = 0;

  constructor(
    private readonly source: IsolateSource,
    options: Partial<PoolOptions> = {},
    /** the clock (ms), for tests */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.options = { ...DEFAULT_POOL, ...options };
    if (this.options.max < this.options.min) this.options.max = this.options.min;
    this.parallelBuilds = Math.max(1, this.options.parallelBuilds ?? Math.max(2, os.availableParallelism()));
    this.scheduleRefill();
  }

  /** A ready isolate for a worker with this memory limit: from the pool when possible, else made
   *  now, on isolated-vm's threads like the pool's own (never on the thread that serves requests). */
  async take(memoryMb: number, options: { background?: boolean } = {}): Promise<ReadyIsolate> {
    if (!this.options.enabled || memoryMb !== this.options.memoryMb) return ReadyIsolate.create(this.source, memoryMb, { inspector: this.options.inspector, background: options.background });
    // A worker in the background class (it breached its CPU limit: background-class.ts) builds
    // its own isolate in that class, inline: a tenant whose every request recycles its isolate
    // neither drains the pool nor makes it refill at everyone else's priority.
    if (options.background && !this.options.inspector) return ReadyIsolate.create(this.source, memoryMb, { background: true });
    this.countTake();
    this.scheduleRefill();
    const isolate = this.ready.pop();
    if (isolate) {
      // perhaps built in the background class (backgroundBuilds); a worker's tasks are somebody's request
      if (this.options.backgroundBuilds === true) isolate.setBackground(false);
      return isolate;
    }
    this.misses++;
    this.created++;
    return ReadyIsolate.create(this.source, memoryMb);
  }

  /** The cold-start rate now (takes per second). */
  ratePerSecond(): number {
    return this.rate * Math.exp(-(this.now() - this.rateAt) / (RATE_TAU_SECONDS * 1000));
  }

  /** The number of ready isolates the pool aims for now: what the recent cold-start rate takes
   *  while a refill is under way (never less than half a second of it), within [min, max]. */
  target(): number {
    const { min, max } = this.options;
    if (!this.options.enabled) return 0;
    const horizon = Math.max(MIN_HORIZON_SECONDS, (this.refillMs + (this.options.maxRefillDeferMs ?? MAX_REFILL_DEFER_MS)) / 1000);
    // A rate that has decayed to a fraction of a take keeps no isolate beyond the floor.
    const wanted = Math.ceil(this.ratePerSecond() * horizon - 0.01);
    return Math.max(min, Math.min(max, wanted));
  }

  stats(): PoolStats {
    return {
      ready: this.ready.length,
      target: this.target(),
      building: this.warming,
      created: this.created,
      taken: this.taken,
      misses: this.misses,
      ratePerSecond: this.ratePerSecond(),
      refillMs: this.refillMs,
      bytes: this.ready.length * this.bytesPerIsolate,
    };
  }

  /** Fill up to the target now (used at startup and by tests/benches). */
  async fill(): Promise<void> {
    const target = this.target();
    while (!this.closed && this.ready.length < target) {
      const missing = target - this.ready.length - this.warming;
      if (missing > 0) await Promise.all(Array.from({ length: Math.min(missing, this.parallelBuilds) }, () => this.addOne()));
      else await new Promise((resolve) => setTimeout(resolve, 1)); // a background refill is finishing one
    }
  }

  close(): void {
    this.closed = true;
    for (const isolate of this.ready.splice(0)) isolate.dispose('pool closed');
  }

  private async addOne(): Promise<void> {
    this.warming++;
    const started = performance.now();
    let isolate: ReadyIsolate;
    let warmed = false;
    try {
      // backgroundBuilds: nobody waits for a refill and cold starts' crossings do, so the build
      // (the spawner's task that deserializes, then the new isolate's boot and warm-up) may run
      // in the background class of isolated-vm's threads, below the crossings (patch 14).
      isolate = await ReadyIsolate.create(this.source, this.options.memoryMb, { background: this.options.backgroundBuilds === true });
      this.created++;
      // Run the install and dispatch path (Request, URL, Headers, Response...) in this isolate
      // now, on isolated-vm's threads, so the cold start that takes it does not pay for V8's
      // first runs of that code.
      // A warm-up that keeps failing (a machine too slow for its timeout) is given up on: pooled
      // isolates then go out unwarmed, which costs only speed.
      warmed = this.warmUpFailures >= MAX_WARM_UP_FAILURES || (await isolate.warm(this.options.warmUpRounds));
    } finally {
      this.warming--;
    }
    this.refillMs += 0.2 * (performance.now() - started - this.refillMs);
    if (this.closed) return isolate.dispose('pool closed');
    if (!warmed) {
      // Cut mid-way, the warm-up may not have reset the guest's state: never hand this one out.
      this.warmUpFailures++;
      return isolate.dispose('warm-up failed');
    }
    if (this.created <= 2) {
      // Measure once what a blank isolate holds, for the memory report (asynchronously: a
      // synchronous read would wait on the isolate's lock on this thread).
      isolate.isolate.getHeapStatistics().then(
        (heap) => {
          this.bytesPerIsolate = heap.total_heap_size + heap.externally_allocated_size;
        },
        () => {}, // taken and disposed meanwhile: the next refill measures
      );
    }
    this.ready.push(isolate);
  }

  private countTake(): void {
    this.taken++;
    const now = this.now();
    this.rate = this.ratePerSecond() + 1 / RATE_TAU_SECONDS;
    this.rateAt = now;
  }

  // Building a pooled isolate runs on isolated-vm's threads (ReadyIsolate.create) but still costs
  // milliseconds of CPU, and on a small machine that CPU is taken from the requests being served.
  // So a refill round starts when no request is in flight (right after the cold start that took
  // an isolate has answered, typically), or after MAX_REFILL_DEFER_MS when the server is never
  // quiet; it then keeps up to `parallelBuilds` builds going until the pool reaches its target.
  private scheduleRefill(delayMs = REFILL_DELAY_MS): void {
    if (this.closed || !this.options.enabled) return;
    // Far behind (a storm of cold starts is emptying the pool), a build starts at once: builds
    // run on isolated-vm's threads, and each one that waits for a quiet moment (which a storm
    // never has) is a cold start that finds the pool empty.
    if (this.behind() && this.options.urgentRefill !== false) return this.pump();
    if (this.refillScheduled) return;
    this.refillScheduled = true;
    const attempt = () => {
      this.refillScheduled = false;
      this.pump();
    };
    whenQuiet(attempt, { isBusy: this.options.isBusy, maxWaitMs: this.options.maxRefillDeferMs ?? MAX_REFILL_DEFER_MS, delayMs });
  }

  /** Whether cold starts are outrunning the pool: their rate has raised its target above the
   *  floor, and it holds less than half of that. (At the floor, refills wait for quiet.) */
  private behind(): boolean {
    const target = this.target();
    return target > this.options.min && this.ready.length < target / 2;
  }

  /** Start builds until the target is covered or `parallelBuilds` are under way; each build that
   *  ends starts the next (through scheduleRefill, so between requests where possible). */
  private pump(): void {
    while (!this.closed && this.warming < this.parallelBuilds && this.ready.length + this.warming < this.target()) {
      this.addOne().then(
        () => (this.behind() && this.options.urgentRefill !== false ? this.pump() : this.scheduleRefill(0)),
        () => {}, // out of memory or similar: the next take tries again
      );
    }
  }
}
