// Cron triggers: each deployed worker's `crons` (upload metadata, or wrangler's triggers.crons)
// scheduled with croner and delivered to the worker's scheduled() handler through
// Runtime.scheduled(), so CPU, wall and memory limits apply as to any invocation.
//
// Expressions are the Workers syntax: 5 fields (minute hour day-of-month month day-of-week, with
// names, ranges, steps, L, W and #), plus an optional leading seconds field (6 fields) for
// schedules finer than a minute. They run in UTC, as on Cloudflare. Day-of-week follows classic
// cron (0 or 7 = Sunday); when both day fields are restricted, either one matching fires.
//
// A run still going when the next is due is not started twice: croner's `protect` skips the new
// one, and the skip is logged and reported (nothing piles up). A run whose handler throws is logged
// with the stack and retried (a couple of times, with a delay) unless the handler called
// controller.noRetry(), or the next scheduled run comes sooner than the retry would.
import { Cron } from 'croner';
import type { Logger } from 'pino';

/** What the scheduler needs of the runtime. */
export interface ScheduledTarget {
  scheduled(
    name: string,
    cron: string,
    scheduledTime?: number,
  ): Promise<{ outcome: 'ok' | 'exception' | 'limit'; error?: string; noRetry: boolean; requestId: string }>;
}

export type CronOutcome = 'ok' | 'exception' | 'limit' | 'skipped' | 'unavailable';

export interface CronRun {
  worker: string;
  cron: string;
  /** when the run was due (ms since the epoch): controller.scheduledTime */
  scheduledTime: number;
  outcome: CronOutcome;
  /** 0 for the first delivery, 1.. for retries */
  attempt: number;
  error?: string;
  requestId?: string;
  wallMs: number;
}

export interface CronSchedulerOptions {
  logger: Logger;
  /** IANA zone the expressions are read in; UTC as on Workers */
  timezone?: string;
  /** deliveries after the first for a run whose handler threw (default 2) */
  retries?: number;
  /** wait before retry n is n times this (default 1000 ms) */
  retryDelayMs?: number;
  /**
   * Several nodes (or cluster processes) scheduling the same crons: each due run goes to the one
   * whose claim succeeds (e.g. Redis `SET cinder:cron:<worker>:<cron>:<time> 1 NX PX 60000`).
   * Default: this scheduler runs everything.
   */
  claim?: (worker: string, cron: string, scheduledTime: number) => boolean | Promise<boolean>;
}

const CRON_MODE = '5-or-6-parts' as const;
const DEFAULT_TIMEZONE = 'Etc/UTC';

/**
 * Why a cron expression cannot be used, or null when it is fine: 5 fields (Workers) or 6 (a
 * leading seconds field), and it must fire at some time in the future.
 */
export function validateCron(expression: string): string | null {
  if (typeof expression !== 'string' || !expression.trim()) return 'a cron expression must be a non-empty string';
  let job: Cron | undefined;
  try {
    job = new Cron(expression, { paused: true, mode: CRON_MODE, timezone: DEFAULT_TIMEZONE });
    if (!job.nextRun()) return `cron "${expression}" never fires`;
    return null;
  } catch (error) {
    const reason = (error as Error).message.replace(/^CronPattern: /, '').replace(/mode '5-or-6-parts' requires/, 'a cron expression needs');
    return `invalid cron "${expression}": ${reason} (expected 5 fields "minute hour day month weekday", or 6 with seconds first)`;
  } finally {
    job?.stop();
  }
}

interface Job {
  cron: string;
  job: Cron;
  /** bumped by unschedule, so a retry timer of a removed job does nothing */
  stopped: boolean;
}

export class CronScheduler {
  private readonly jobs = new Map<string, Map<string, Job>>();
  private readonly listeners: ((run: CronRun) => void)[] = [];
  private readonly logger: Logger;
  private readonly timezone: string;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly claim: CronSchedulerOptions['claim'];
  private closed = false;

  constructor(
    private readonly runtime: ScheduledTarget,
    options: CronSchedulerOptions,
  ) {
    this.logger = options.logger;
    this.timezone = options.timezone ?? DEFAULT_TIMEZONE;
    this.retries = options.retries ?? 2;
    this.retryDelayMs = options.retryDelayMs ?? 1000;
    this.claim = options.claim;
  }

  /** Hear of every run (metrics, tests). */
  onRun(listener: (run: CronRun) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Make `worker`'s schedule exactly `crons` (after a deploy, rollback or restore). Expressions it
   * already had keep their timers; an invalid one is logged and skipped (uploads validate them).
   */
  sync(worker: string, crons: readonly string[]): void {
    if (this.closed) return;
    const wanted = new Set(crons.map((c) => c.trim()).filter(Boolean));
    const current = this.jobs.get(worker) ?? new Map<string, Job>();
    for (const [cron, job] of current) {
      if (wanted.has(cron)) continue;
      this.stopJob(job);
      current.delete(cron);
    }
    for (const cron of wanted) {
      if (current.has(cron)) continue;
      const error = validateCron(cron);
      if (error) {
        this.logger.error({ worker, cron }, `not scheduling ${worker}: ${error}`);
        continue;
      }
      current.set(cron, this.startJob(worker, cron));
    }
    if (current.size) this.jobs.set(worker, current);
    else this.jobs.delete(worker);
  }

  /** Forget every schedule of a worker (deleted). Runs in progress finish. */
  unschedule(worker: string): void {
    const current = this.jobs.get(worker);
    if (!current) return;
    for (const job of current.values()) this.stopJob(job);
    this.jobs.delete(worker);
  }

  /** What is scheduled: per worker and expression, the next due time and whether a run is going. */
  schedules(worker?: string): { worker: string; cron: string; next: Date | null; running: boolean }[] {
    const out: { worker: string; cron: string; next: Date | null; running: boolean }[] = [];
    for (const [name, jobs] of this.jobs) {
      if (worker !== undefined && name !== worker) continue;
      for (const { cron, job } of jobs.values()) out.push({ worker: name, cron, next: job.nextRun(), running: job.isBusy() });
    }
    return out;
  }

  /** Deliver one scheduled event now, outside the schedule (`/__scheduled`, tests). No retries. */
  async fire(worker: string, cron: string, scheduledTime = Date.now()): Promise<CronRun> {
    return this.deliver(worker, cron, scheduledTime, 0);
  }

  close(): void {
    this.closed = true;
    for (const worker of [...this.jobs.keys()]) this.unschedule(worker);
  }

  // --- internals ------------------------------------------------------------------------------

  private startJob(worker: string, cron: string): Job {
    const entry: Job = { cron, stopped: false, job: undefined as unknown as Cron };
    entry.job = new Cron(
      cron,
      {
        mode: CRON_MODE,
        timezone: this.timezone,
        // Timers must not keep a stopping process alive.
        unref: true,
        // A run still going when the next is due: skip the new one, say so.
        protect: (job) => {
          const scheduledTime = Date.now();
          const running = job.currentRun();
          this.logger.warn(
            { worker, cron, running_since: running?.toISOString() },
            `cron run of ${worker} (${cron}) skipped: the previous run, due ${running?.toISOString() ?? 'earlier'}, is still going`,
          );
          this.emit({ worker, cron, scheduledTime, outcome: 'skipped', attempt: 0, wallMs: 0 });
        },
        catch: (error) => {
          this.logger.error({ worker, cron, err: (error as Error)?.stack ?? String(error) }, `cron job of ${worker} (${cron}) failed in the scheduler`);
        },
      },
      async (job: Cron) => {
        // The tick, not the moment the timer ran (a few ms later, different on every node): what
        // the handler sees as scheduledTime and what a claim across nodes is keyed by.
        const scheduledTime = Math.floor((job.currentRun()?.getTime() ?? Date.now()) / 1000) * 1000;
        await this.runWithRetries(entry, worker, scheduledTime);
      },
    );
    return entry;
  }

  private stopJob(job: Job): void {
    job.stopped = true;
    job.job.stop();
  }

  private async runWithRetries(entry: Job, worker: string, scheduledTime: number): Promise<void> {
    if (this.claim) {
      let mine = false;
      try {
        mine = await this.claim(worker, entry.cron, scheduledTime);
      } catch (error) {
        this.logger.error({ worker, cron: entry.cron, err: (error as Error).message }, `could not claim the cron run of ${worker}; not running it here`);
      }
      if (!mine) return;
    }
    for (let attempt = 0; ; attempt++) {
      const run = await this.deliver(worker, entry.cron, scheduledTime, attempt);
      if (run.outcome !== 'exception' || run.noRetry || attempt >= this.retries || entry.stopped || this.closed) return;
      const delay = this.retryDelayMs * (attempt + 1);
      const next = entry.job.msToNext();
      // The next scheduled run is as good as a retry, and a retry must not make it skip.
      if (next === null || next <= delay) return;
      this.logger.info({ worker, cron: entry.cron, attempt: attempt + 1, delay_ms: delay }, `retrying the failed cron run of ${worker} in ${delay} ms`);
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
      if (entry.stopped || this.closed) return;
    }
  }

  private async deliver(worker: string, cron: string, scheduledTime: number, attempt: number): Promise<CronRun & { noRetry?: boolean }> {
    const started = performance.now();
    let run: CronRun & { noRetry?: boolean };
    try {
      const result = await this.runtime.scheduled(worker, cron, scheduledTime);
      run = {
        worker,
        cron,
        scheduledTime,
        outcome: result.outcome,
        attempt,
        error: result.error,
        requestId: result.requestId,
        noRetry: result.noRetry,
        wallMs: performance.now() - started,
      };
    } catch (error) {
      // No such worker any more (deleted between the tick and now), or the runtime is closing.
      run = { worker, cron, scheduledTime, outcome: 'unavailable', attempt, error: (error as Error).message, wallMs: performance.now() - started };
    }
    const fields = { worker, cron, requestId: run.requestId, scheduled_time: new Date(scheduledTime).toISOString(), attempt, outcome: run.outcome, wall_ms: Number(run.wallMs.toFixed(3)) };
    switch (run.outcome) {
      case 'ok':
        this.logger.info(fields, 'cron run');
        break;
      case 'exception':
        this.logger.error({ ...fields, err: run.error, noRetry: run.noRetry || undefined }, `cron run of ${worker} (${cron}) threw: ${firstLine(run.error)}`);
        break;
      case 'limit':
        this.logger.warn({ ...fields, err: run.error }, `cron run of ${worker} (${cron}) ${run.error}`);
        break;
      default:
        this.logger.warn({ ...fields, err: run.error }, `cron run of ${worker} (${cron}) could not start: ${run.error}`);
    }
    this.emit(run);
    return run;
  }

  private emit(run: CronRun): void {
    for (const listener of this.listeners) {
      try {
        listener(run);
      } catch (error) {
        this.logger.error({ err: (error as Error).message }, 'cron listener failed');
      }
    }
  }
}

function firstLine(text: string | undefined): string {
  return (text ?? 'unknown error').split('\n')[0];
}
