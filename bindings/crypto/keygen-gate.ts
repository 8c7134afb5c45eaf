// RSA key generation runs on Node's threadpool (4 threads by default), which every tenant's
// crypto, compression and DNS share; it cannot be cancelled once started. So at most a few run at
// once in the whole process, one at a time per isolate, and an isolate may only queue a few more:
// a tenant asking for many keys waits for its own, and the rest of the pool stays free for others.

/** RSA key generations running at once in the process: half the default threadpool. */
export const MAX_CONCURRENT_KEYGENS = 2;
/** Key generations one isolate may have waiting behind its running one. */
export const MAX_QUEUED_PER_ISOLATE = 4;

let running = 0;
const waiting: (() => void)[] = [];

function acquireGlobal(): Promise<void> {
  if (running < MAX_CONCURRENT_KEYGENS) {
    running++;
    return Promise.resolve();
  }
  return new Promise((resolve) => waiting.push(() => resolve()));
}

function releaseGlobal(): void {
  const next = waiting.shift();
  if (next) next(); // the slot passes straight to the next waiter
  else running--;
}

/** One isolate's side of the gate (kept in its crypto state). */
export class KeygenQueue {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  /** Run `work` when this isolate's earlier generations and a process-wide slot allow; the
   *  milliseconds it ran (not waited) go to `charge`. */
  async run<T>(work: () => Promise<T>, charge: (ms: number) => void, refuse: () => Error): Promise<T> {
    if (this.pending > MAX_QUEUED_PER_ISOLATE) throw refuse();
    this.pending++;
    const previous = this.tail;
    let done!: () => void;
    this.tail = new Promise<void>((resolve) => (done = resolve));
    try {
      await previous;
      await acquireGlobal();
      const started = performance.now();
      try {
        return await work();
      } finally {
        charge(performance.now() - started);
        releaseGlobal();
      }
    } finally {
      this.pending--;
      done();
    }
  }
}
