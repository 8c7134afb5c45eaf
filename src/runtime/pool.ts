// Blank isolates made ahead of demand, on isolated-vm's threads. A cold start takes one
// (microseconds) instead of making one (milliseconds, also off this thread: see take). The pool refills in the background, a few at a time between requests, and sizes
// itself to the recent cold-start rate between a floor and a cap.
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
}

export const DEFAULT_POOL: PoolOptions = { min: 4, max: 64, memoryMb: 128, enabled: true };

/** How long a refill waits after a take before building isolates. */
const REFILL_DELAY_MS = 1;

/** A refill waits for no request to be in flight, but by default never longer than this: a pool
 *  that runs dry costs a whole isolate build (~10 ms) on the request path. */
const MAX_REFILL_DEFER_MS = 50;

/** Isolates built at once when the pool is far below its target (see scheduleRefill). */
const MAX_PARALLEL_BUILDS = 2;

/** After this many failed warm-ups the pool stops warming (see addOne). */
const MAX_WARM_UP_FAILURES = 3;

/** Cold starts are counted per second over this window to size the pool. */
const RATE_WINDOW_SECONDS = 5;

export interface PoolStats {
  ready: number;
  target: number;
  created: number;
  taken: number;
  misses: number;
  /** estimated bytes held by ready isolates */
  bytes: number;
}

export class IsolatePool {
  private readonly ready: ReadyIsolate[] = [];
  private readonly options: PoolOptions;
  private refillScheduled = false;
  /** isolates being created and warmed: count toward the target so nothing overshoots */
  private warming = 0;
  private closed = false;
  private created = 0;
  private taken = 0;
  private misses = 0;
  /** when recent takes happened (ms), oldest first, for the cold-start rate */
  private readonly takeTimes: number[] = [];
  private bytesPerIsolate = 1_000_000;
  private warmUpFailures = 0;

  constructor(
    private readonly source: IsolateSource,
    options: Partial<PoolOptions> = {},
  ) {
    this.options = { ...DEFAULT_POOL, ...options };
    if (this.options.max < this.options.min) this.options.max = this.options.min;
    this.scheduleRefill();
  }

  /** A ready isolate for a worker with this memory limit: from the pool when possible, else made
   *  now, on isolated-vm's threads like the pool's own (never on the thread that serves requests). */
  async take(memoryMb: number): Promise<ReadyIsolate> {
    if (!this.options.enabled || memoryMb !== this.options.memoryMb) return ReadyIsolate.create(this.source, memoryMb, { inspector: this.options.inspector });
    this.countTake();
    this.scheduleRefill();
    const isolate = this.ready.pop();
    if (isolate) return isolate;
    this.misses++;
    this.created++;
    return ReadyIsolate.create(this.source, memoryMb);
  }

  /** The number of ready isolates the pool aims for now. */
  target(): number {
    const { min, max } = this.options;
    if (!this.options.enabled) return 0;
    const now = Date.now();
    this.forgetOldTakes(now);
    // The busier of "the last second" and "the window's average": reacts to a burst at once and
    // decays over the window.
    let lastSecond = 0;
    for (let i = this.takeTimes.length - 1; i >= 0 && this.takeTimes[i] > now - 1000; i--) lastSecond++;
    const perSecond = Math.max(this.takeTimes.length / RATE_WINDOW_SECONDS, lastSecond);
    // Enough to absorb half a second of the recent cold-start rate without making one inline.
    return Math.max(min, Math.min(max, Math.ceil(perSecond / 2)));
  }

  stats(): PoolStats {
    return {
      ready: this.ready.length,
      target: this.target(),
      created: this.created,
      taken: this.taken,
      misses: this.misses,
      bytes: this.ready.length * this.bytesPerIsolate,
    };
  }

  /** Fill up to the target now (used at startup and by tests/benches). */
  async fill(): Promise<void> {
    const target = this.target();
    while (!this.closed && this.ready.length < target) {
      if (this.ready.length + this.warming < target) await this.addOne();
      else await new Promise((resolve) => setTimeout(resolve, 1)); // a background refill is finishing one
    }
  }

  close(): void {
    this.closed = true;
    for (const isolate of this.ready.splice(0)) isolate.dispose('pool closed');
  }

  private async addOne(): Promise<void> {
    this.warming++;
    let isolate: ReadyIsolate;
    let warmed = false;
    try {
      isolate = await ReadyIsolate.create(this.source, this.options.memoryMb);
      this.created++;
      // Run the install and dispatch path (Request, URL, Headers, Response...) in this isolate
      // now, on isolated-vm's threads, so the cold start that takes it does not pay for V8's
      // first runs of that code.
      // A warm-up that keeps failing (a machine too slow for its timeout) is given up on: pooled
      // isolates then go out unwarmed, which costs only speed.
      warmed = this.warmUpFailures >= MAX_WARM_UP_FAILURES || (await isolate.warm());
    } finally {
      this.warming--;
    }
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
    const now = Date.now();
    this.takeTimes.push(now);
    this.forgetOldTakes(now);
  }

  private forgetOldTakes(now: number): void {
    const horizon = now - RATE_WINDOW_SECONDS * 1000;
    let drop = 0;
    while (drop < this.takeTimes.length && this.takeTimes[drop] <= horizon) drop++;
    // Far more takes than any pool cap is worth remembering: keep the newest.
    drop = Math.max(drop, this.takeTimes.length - 10_000);
    if (drop > 0) this.takeTimes.splice(0, drop);
  }

  // Building a pooled isolate runs on isolated-vm's threads (ReadyIsolate.create) but still costs
  // ~15 ms of CPU, and on a small machine that CPU is taken from the requests being served. So a
  // refill starts when no request is in flight (right after the cold start that took an isolate
  // has answered, typically), or after MAX_REFILL_DEFER_MS when the server is never quiet, and
  // builds one isolate per turn (two when far behind).
  private scheduleRefill(delayMs = REFILL_DELAY_MS): void {
    if (this.refillScheduled || this.closed || !this.options.enabled) return;
    this.refillScheduled = true;
    const attempt = () => {
      if (this.closed || this.ready.length + this.warming >= this.target()) {
        this.refillScheduled = false;
        return;
      }
      // Far behind (a burst of cold starts), a second build runs alongside: isolates are built on
      // isolated-vm's threads, and two at a time halve the cold starts that find the pool empty.
      if (this.ready.length + this.warming + 1 < this.target() && this.warming < MAX_PARALLEL_BUILDS - 1) {
        this.addOne().catch(() => {}); // a failure here is retried by the next turn
      }
      this.addOne().then(
        () => {
          this.refillScheduled = false;
          this.scheduleRefill();
        },
        () => {
          this.refillScheduled = false; // out of memory or similar: try again on the next take
        },
      );
    };
    whenQuiet(attempt, { isBusy: this.options.isBusy, maxWaitMs: this.options.maxRefillDeferMs ?? MAX_REFILL_DEFER_MS, delayMs });
  }
}
