// Disposing a V8 isolate holds the calling thread while V8 frees its heap: a fraction of a
// millisecond for a hello worker's isolate (bench/hotpath.mjs), more for a big one. Done inline, a cold
// start that evicts another worker to make room (the live-worker cap) pays for it, and a wave of
// idle expiries (lru-cache fires them from one timer phase) stalls every request behind it. So a
// retired isolate — one with nothing in flight and its host bridge already cut, which no guest
// code can reach any more — is handed here and disposed between requests, one per turn of the
// event loop.
//
// Isolates that must stop now (a CPU or memory limit breach, shutdown) are disposed directly.
import type ivm from 'isolated-vm';
import { whenQuiet } from './quiet.js';

export interface ReaperOptions {
  /** whether requests are being served right now: disposal waits for a quiet moment */
  isBusy?: () => boolean;
  /** the longest a retired isolate waits for a quiet moment (ms) */
  maxDeferMs?: number;
  /** past this many waiting isolates (their memory is still held), disposal stops waiting */
  maxPending?: number;
}

const DEFAULT_MAX_DEFER_MS = 100;
const DEFAULT_MAX_PENDING = 64;

export class IsolateReaper {
  private readonly pending: { isolate: ivm.Isolate; since: number }[] = [];
  private scheduled = false;
  private closed = false;
  private disposedCount = 0;

  constructor(private readonly options: ReaperOptions = {}) {}

  /** Dispose `isolate` soon, between requests (at once if the reaper is closed). */
  dispose(isolate: ivm.Isolate): void {
    if (isolate.isDisposed) return;
    if (this.closed) return this.disposeNow(isolate);
    this.pending.push({ isolate, since: performance.now() });
    this.schedule();
  }

  /** Isolates retired and not yet disposed. */
  get waiting(): number {
    return this.pending.length;
  }

  /** Isolates this reaper has disposed. */
  get disposed(): number {
    return this.disposedCount;
  }

  /** Dispose everything still waiting, now; later isolates are disposed at once (shutdown). */
  close(): void {
    this.closed = true;
    for (const { isolate } of this.pending.splice(0)) this.disposeNow(isolate);
  }

  private schedule(): void {
    if (this.scheduled || this.pending.length === 0) return;
    this.scheduled = true;
    const maxPending = this.options.maxPending ?? DEFAULT_MAX_PENDING;
    // Too many waiting: their memory matters more than the requests' latency.
    const isBusy = () => this.pending.length <= maxPending && (this.options.isBusy?.() ?? false);
    whenQuiet(
      () => {
        this.scheduled = false;
        const next = this.pending.shift();
        if (next) this.disposeNow(next.isolate);
        this.schedule();
      },
      {
        isBusy,
        maxWaitMs: this.options.maxDeferMs ?? DEFAULT_MAX_DEFER_MS,
        since: this.pending[0].since, // the oldest never waits longer than maxDeferMs
      },
    );
  }

  private disposeNow(isolate: ivm.Isolate): void {
    if (isolate.isDisposed) return;
    try {
      isolate.dispose();
      this.disposedCount++;
    } catch {
      // already being torn down by isolated-vm (a catastrophic error): nothing left to free here
    }
  }
}
