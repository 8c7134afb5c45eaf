// What the supervisor decides when the serving process dies or hangs: how long to wait before the
// next start (backoff when it keeps dying), which workers to blame, and which to quarantine. Pure
// bookkeeping, no processes, so that it can be tested on its own.

export type RestartReason = 'exit' | 'hang';

/** One worker's invocations in flight, as the child last reported them. */
export interface InFlight {
  worker: string;
  /** when its oldest invocation in flight began (epoch ms) */
  since: number;
}

export interface Quarantine {
  worker: string;
  /** epoch ms */
  until: number;
  reason: string;
}

export interface RestartPolicyOptions {
  /** restarts a worker may be blamed for within blameWindowMs before it is quarantined */
  quarantineAfter: number;
  blameWindowMs: number;
  quarantineMs: number;
  /** a child that lived at least this long resets the backoff */
  stableMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** an invocation in flight this long at the last report is a long-running suspect */
  suspectAgeMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  quarantineAfter: 3,
  blameWindowMs: 10 * 60_000,
  quarantineMs: 10 * 60_000,
  stableMs: 30_000,
  backoffBaseMs: 250,
  backoffMaxMs: 30_000,
  suspectAgeMs: 500,
};

export interface RestartDecision {
  /** wait this long before starting the next child */
  delayMs: number;
  /** the workers blamed for this restart */
  blamed: string[];
  /** workers quarantined by this restart */
  quarantined: Quarantine[];
}

export class RestartPolicy {
  readonly options: RestartPolicyOptions;
  readonly restarts: Record<RestartReason, number> = { exit: 0, hang: 0 };
  /** per serving-process slot (--processes N): one slot crashing does not slow another's restart */
  private readonly quickFailures = new Map<number, number>();
  private readonly strikes = new Map<string, number[]>();
  private readonly quarantines = new Map<string, Quarantine>();

  constructor(options: Partial<RestartPolicyOptions> = {}) {
    this.options = { ...DEFAULT_RESTART_POLICY, ...options };
  }

  /**
   * The child died or hung after living `livedMs`. `inFlight` is what its last report said was
   * running and `reportedAt` when that was; `enteredSince` the workers that began an invocation
   * after it. A short request of a busy neighbour is usually among them by chance; an invocation
   * that had been running a while is not, so when one was, only the long-running ones are blamed.
   */
  record(reason: RestartReason, livedMs: number, inFlight: InFlight[], reportedAt: number, enteredSince: string[], now = Date.now(), slot = 0): RestartDecision {
    this.restarts[reason]++;
    const quick = livedMs >= this.options.stableMs ? 1 : (this.quickFailures.get(slot) ?? 0) + 1;
    this.quickFailures.set(slot, quick);
    const delayMs = quick <= 1 ? 0 : Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * 2 ** (quick - 2));

    const longRunning = inFlight.filter((entry) => reportedAt - entry.since >= this.options.suspectAgeMs).map((entry) => entry.worker);
    const blamed = longRunning.length ? longRunning : [...new Set([...inFlight.map((entry) => entry.worker), ...enteredSince])];
    const quarantined: Quarantine[] = [];
    for (const worker of blamed) {
      const recent = (this.strikes.get(worker) ?? []).filter((at) => now - at < this.options.blameWindowMs);
      recent.push(now);
      this.strikes.set(worker, recent);
      if (recent.length >= this.options.quarantineAfter && !this.isQuarantined(worker, now)) {
        const minutes = Math.round(this.options.blameWindowMs / 60_000);
        const entry: Quarantine = {
          worker,
          until: now + this.options.quarantineMs,
          reason: `Worker "${worker}" is quarantined: it was running when the server crashed or hung ${recent.length} times in the last ${minutes} minute${minutes === 1 ? '' : 's'}; its requests are refused until ${new Date(now + this.options.quarantineMs).toISOString()}.`,
        };
        this.quarantines.set(worker, entry);
        this.strikes.delete(worker);
        quarantined.push(entry);
      }
    }
    return { delayMs, blamed, quarantined };
  }

  isQuarantined(worker: string, now = Date.now()): boolean {
    const entry = this.quarantines.get(worker);
    return entry !== undefined && entry.until > now;
  }

  /** Quarantines still running at `now`. */
  active(now = Date.now()): Quarantine[] {
    for (const [worker, entry] of this.quarantines) if (entry.until <= now) this.quarantines.delete(worker);
    return [...this.quarantines.values()];
  }
}
