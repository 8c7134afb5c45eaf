// Blank isolates made ahead of demand. A cold start takes one (microseconds) instead of making
// one (1-2 ms). The pool refills in the background, a few at a time between requests, and sizes
// itself to the recent cold-start rate between a floor and a cap.
import { ReadyIsolate } from './ready-isolate.js';
import type { IsolateSource } from './isolate-source.js';

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
}

export const DEFAULT_POOL: PoolOptions = { min: 4, max: 64, memoryMb: 128, enabled: true };

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
  private readonly recentTakes: number[] = new Array(RATE_WINDOW_SECONDS).fill(0);
  private rateSecond = Math.floor(Date.now() / 1000);
  private bytesPerIsolate = 1_000_000;

  constructor(
    private readonly source: IsolateSource,
    options: Partial<PoolOptions> = {},
  ) {
    this.options = { ...DEFAULT_POOL, ...options };
    if (this.options.max < this.options.min) this.options.max = this.options.min;
    this.scheduleRefill();
  }

  /** A ready isolate for a worker with this memory limit: from the pool when possible. */
  take(memoryMb: number): ReadyIsolate {
    if (!this.options.enabled || memoryMb !== this.options.memoryMb) return new ReadyIsolate(this.source, memoryMb, { inspector: this.options.inspector });
    this.countTake();
    this.scheduleRefill();
    const isolate = this.ready.pop();
    if (isolate) return isolate;
    this.misses++;
    this.created++;
    return new ReadyIsolate(this.source, memoryMb);
  }

  /** The number of ready isolates the pool aims for now. */
  target(): number {
    const { min, max } = this.options;
    if (!this.options.enabled) return 0;
    this.rollRate();
    // The busier of "this second so far" and "the window's average": reacts to a burst at once
    // and decays over the window.
    const average = this.recentTakes.reduce((a, b) => a + b, 0) / RATE_WINDOW_SECONDS;
    const perSecond = Math.max(average, this.recentTakes[this.recentTakes.length - 1]);
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
    try {
      isolate = new ReadyIsolate(this.source, this.options.memoryMb);
      this.created++;
      // Compile the hot paths (Request, URL, Headers, Response...) in this isolate now, on
      // isolated-vm's threads, so the cold start that takes it does not pay for lazy compilation.
      await isolate.warm();
    } finally {
      this.warming--;
    }
    if (this.closed) return isolate.dispose('pool closed');
    if (this.created <= 2) {
      // Measure once what a blank isolate holds, for the memory report.
      const heap = isolate.isolate.getHeapStatisticsSync();
      this.bytesPerIsolate = heap.total_heap_size + heap.externally_allocated_size;
    }
    this.ready.push(isolate);
  }

  private countTake(): void {
    this.taken++;
    this.rollRate();
    this.recentTakes[this.recentTakes.length - 1]++;
  }

  private rollRate(): void {
    const now = Math.floor(Date.now() / 1000);
    const shift = Math.min(now - this.rateSecond, RATE_WINDOW_SECONDS);
    for (let i = 0; i < shift; i++) {
      this.recentTakes.shift();
      this.recentTakes.push(0);
    }
    this.rateSecond = now;
  }

  // One isolate per macrotask so that refilling never holds a request up by more than ~1 ms.
  private scheduleRefill(): void {
    if (this.refillScheduled || this.closed || !this.options.enabled) return;
    this.refillScheduled = true;
    setImmediate(() => {
      if (this.closed || this.ready.length + this.warming >= this.target()) {
        this.refillScheduled = false;
        return;
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
    });
  }
}
