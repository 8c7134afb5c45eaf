// Enforces CPU limits across a whole invocation. isolated-vm's own `timeout` is wall time and
// covers only synchronous execution, never continuations after an await, so we sample each busy
// isolate's thread CPU clock (`isolate.cpuTime`, real CPU time once isolated-vm is built with
// USE_CLOCK_THREAD_CPUTIME_ID; see scripts/patch-isolated-vm.mjs) and dispose the isolate on a
// breach. The timer runs only while some invocation is in flight.

export interface Watched {
  /** sample the CPU clock, charge in-flight invocations, breach if over; false once finished */
  sampleCpu(): boolean;
}

export class Watchdog {
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly intervalMs = 2) {}

  watch(target: Watched): void {
    this.watched.add(target);
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      this.timer.unref();
    }
  }

  unwatch(target: Watched): void {
    this.watched.delete(target);
    if (this.watched.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private tick(): void {
    for (const target of this.watched) {
      if (!target.sampleCpu()) this.unwatch(target);
    }
  }

  close(): void {
    this.watched.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
