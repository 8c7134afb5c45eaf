// Metering one isolate: the CPU its invocations use (shared out between those in flight, checked
// against the per-invocation limit) and its heap, sampled for the invocation records.
import type ivm from 'isolated-vm';
import type { Invocation } from './invocation.js';

const NS_PER_MS = 1_000_000n;
const HEAP_SAMPLE_MS = 200;
const UTILIZATION_WINDOW_MS = 1;

/** What a CPU reading found over the limit: one invocation, or (no culprit) a slice that never
 *  reached the host, so some invocation is spinning. */
export interface CpuBreach {
  culprit?: Invocation;
}

export class CpuMeter {
  /** the CPU limit per invocation */
  readonly limitNs: bigint;
  private lastCpu = 0n;
  private lastSampleAt = 0;
  private cpuAtProgress = 0n;
  /** share of wall time the isolate's thread spent on CPU recently (EWMA, 0..1) */
  utilization = 0;

  constructor(
    private readonly isolate: () => ivm.Isolate,
    cpuLimitMs: number,
  ) {
    this.limitNs = BigInt(Math.round(cpuLimitMs)) * NS_PER_MS;
  }

  /** the isolate's CPU clock at the last reading (sample, reset or progress), ns */
  get lastReading(): bigint {
    return this.lastCpu;
  }

  private read(): bigint {
    try {
      return this.isolate().cpuTime;
    } catch {
      return this.lastCpu;
    }
  }

  /** Start counting from now (after the load, or when the first invocation begins). */
  reset(): void {
    this.lastCpu = this.cpuAtProgress = this.utilizationCpu = this.read();
    this.lastSampleAt = performance.now();
  }

  /** the CPU reading utilization was last updated from (see sample) */
  private utilizationCpu = 0n;

  /** The guest called the host, so whatever runs is not one endless slice. */
  progress(): void {
    this.cpuAtProgress = this.read();
  }

  /** progress(), with the reading sample() has just taken (one clock read fewer). */
  progressAtLastSample(): void {
    this.cpuAtProgress = this.lastCpu;
  }

  /** A periodic reading (the watchdog's) shared out between the invocations in flight; returns
   *  what is over the limit, if anything is. */
  sample(inFlight: ReadonlyMap<number, Invocation>): CpuBreach | null {
    const cpu = this.read();
    const delta = cpu - this.lastCpu;
    this.lastCpu = cpu;
    const now = performance.now();
    // Over at least a millisecond: the answers of a batch of requests come in together, and a
    // burst of readings microseconds apart would each count as a moment of no CPU.
    if (now - this.lastSampleAt >= UTILIZATION_WINDOW_MS) {
      const wallNs = (now - this.lastSampleAt) * 1e6;
      this.utilization = 0.8 * this.utilization + 0.2 * Math.max(0, Math.min(1, Number(cpu - this.utilizationCpu) / wallNs));
      this.lastSampleAt = now;
      this.utilizationCpu = cpu;
    }
    if (delta !== 0n) {
      // Concurrent invocations share the isolate's thread; split what it burned between them.
      // With scripts/patch-isolated-vm.mjs the clock is the thread's CPU clock even mid-slice, so
      // deltas are not expected to go negative; should one (an unpatched build reads the running
      // slice as wall time, then drops back), applying it keeps each total telescoping to true CPU.
      const share = delta / BigInt(inFlight.size);
      for (const invocation of inFlight.values()) {
        invocation.cpuNs += share;
        if (invocation.cpuNs < 0n) invocation.cpuNs = 0n;
        if (invocation.cpuNs > this.limitNs) return { culprit: invocation };
      }
    }
    // One uninterrupted slice longer than the limit: some invocation is spinning.
    if (cpu - this.cpuAtProgress > this.limitNs) return {};
    return null;
  }
}

/** The isolate's heap, read at most every HEAP_SAMPLE_MS; records carry the latest reading. */
export class HeapSampler {
  bytes = 0;
  peakBytes = 0;
  private sampledAt = 0;
  private sampling = false;

  constructor(private readonly isolate: () => ivm.Isolate) {}

  /** Read the heap (at most every HEAP_SAMPLE_MS) on isolated-vm's threads: the synchronous read
   *  would wait on this thread for the isolate's lock while guest code runs. */
  sample(alive: () => boolean): void {
    const now = performance.now();
    // alive() last: it asks isolated-vm (a native call), and most calls return on the time.
    if (this.sampling || now - this.sampledAt < HEAP_SAMPLE_MS || !alive()) return;
    this.sampledAt = now;
    this.sampling = true;
    this.isolate().getHeapStatistics().then(
      (heap) => {
        this.sampling = false;
        this.record(heap);
      },
      () => {
        this.sampling = false;
      },
    );
  }

  private record(heap: ivm.HeapStatistics): void {
    this.bytes = heap.used_heap_size + heap.externally_allocated_size;
    this.peakBytes = Math.max(this.peakBytes, this.bytes);
  }
}
