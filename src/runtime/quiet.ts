// Background work that holds the main thread (building a pooled isolate, disposing a retired one)
// waits for a moment when no request is being served, so that it lands between requests instead
// of inside one. On a server that is never quiet it runs anyway once it has waited long enough.

export interface QuietOptions {
  /** whether requests are being served right now */
  isBusy?: () => boolean;
  /** run no later than this many ms after `since`, busy or not */
  maxWaitMs: number;
  /** when the wait started (performance.now()); defaults to now */
  since?: number;
  /** first look after this many ms (0: on the next turn of the event loop) */
  delayMs?: number;
}

/** Run `task` at the first look at which `isBusy()` is false (looking again every millisecond),
 *  or once `maxWaitMs` have passed since `since`. The timers are unref'd: they never keep the
 *  process alive. */
export function whenQuiet(task: () => void, options: QuietOptions): void {
  const since = options.since ?? performance.now();
  const look = () => {
    if (options.isBusy?.() && performance.now() - since < options.maxWaitMs) {
      setTimeout(look, 1).unref();
      return;
    }
    task();
  };
  if (options.delayMs) setTimeout(look, options.delayMs).unref();
  else setImmediate(look).unref();
}
