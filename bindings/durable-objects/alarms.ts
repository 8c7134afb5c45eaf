// Durable Object alarms: each object's alarm time is kept in the registry (so it survives a
// restart), and one timer per server waits for the earliest. When an alarm is due its object's
// alarm() runs (the object is created if it is not live); if it throws (or breaks a limit) it is
// tried again with exponential backoff, as Cloudflare does: up to 6 retries, starting at 2 s. An
// alarm the handler replaced with setAlarm() while it ran is kept; otherwise it is cleared.
import type { Logger } from 'pino';
import type { DurableObjectRegistry, NamespaceRecord, AlarmRecord } from './registry.js';

export interface AlarmOptions {
  /** first retry delay; doubles for each further one (default 2 s) */
  retryBaseMs?: number;
  /** retries after the first failed run (default 6) */
  maxRetries?: number;
}

/** The object is held by another process of this node (placement with --redis), which fires the
 *  alarm itself: this process leaves it alone for a while. */
export const HELD_ELSEWHERE = 'held elsewhere' as const;
const ELSEWHERE_RECHECK_MS = 1000;

/** Runs an object's alarm(); resolves to an error message when it failed. */
export type AlarmRunner = (alarm: AlarmRecord) => Promise<string | null | typeof HELD_ELSEWHERE>;

/** Timers past this are re-armed rather than set (setTimeout's 32-bit limit). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class AlarmScheduler {
  private timer: NodeJS.Timeout | null = null;
  private nextAt: number | null = null;
  private readonly running = new Set<string>();
  private closed = false;
  private readonly retryBaseMs: number;
  private readonly maxRetries: number;
  private runner: AlarmRunner | null = null;
  /** alarm runs since start, by outcome (tests and metrics) */
  readonly counts = { ok: 0, failed: 0, abandoned: 0 };

  constructor(
    private readonly registry: DurableObjectRegistry,
    private readonly logger: Logger,
    options: AlarmOptions = {},
  ) {
    this.retryBaseMs = options.retryBaseMs ?? 2_000;
    this.maxRetries = options.maxRetries ?? 6;
  }

  /** Start firing alarms (the ones stored before a restart included). */
  start(runner: AlarmRunner): void {
    this.runner = runner;
    this.arm(Date.now());
  }

  get(namespace: NamespaceRecord, id: string): number | null {
    return this.registry.getAlarm(namespace.dir, id);
  }

  set(namespace: NamespaceRecord, id: string, name: string | null, at: number): void {
    this.registry.setAlarm(namespace.dir, id, name, Math.floor(at));
    if (this.nextAt === null || at < this.nextAt) this.arm(at);
  }

  delete(namespace: NamespaceRecord, id: string): void {
    this.registry.deleteAlarm(namespace.dir, id);
  }

  private arm(at: number): void {
    if (this.closed || !this.runner) return;
    if (this.timer) clearTimeout(this.timer);
    this.nextAt = at;
    this.timer = setTimeout(() => this.fire(), Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now())));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = null;
    this.nextAt = null;
    if (this.closed) return;
    const now = Date.now();
    const { due, next } = this.registry.dueAlarms(now);
    for (const alarm of due) {
      const key = `${alarm.dir}/${alarm.id}`;
      if (this.running.has(key)) continue;
      this.running.add(key);
      void this.run(alarm).finally(() => {
        this.running.delete(key);
        this.rearm();
      });
    }
    if (next !== null) this.arm(next);
    else if (due.length === 0) this.rearm();
  }

  /** Arm for the earliest stored alarm not running now. */
  private rearm(): void {
    if (this.closed) return;
    const { due, next } = this.registry.dueAlarms(Date.now());
    const waiting = due.filter((a) => !this.running.has(`${a.dir}/${a.id}`));
    if (waiting.length) this.arm(Date.now());
    else if (next !== null && (this.nextAt === null || next < this.nextAt)) this.arm(next);
  }

  private async run(alarm: AlarmRecord): Promise<void> {
    let failure: string | null;
    try {
      const out = await this.runner!(alarm);
      if (out === HELD_ELSEWHERE) {
        // Still "running" here until the recheck, so this process does not spin on it.
        await new Promise((resolve) => setTimeout(resolve, ELSEWHERE_RECHECK_MS).unref());
        return;
      }
      failure = out;
    } catch (error) {
      failure = (error as Error).message;
    }
    if (failure === null) {
      this.counts.ok++;
      this.registry.finishAlarm(alarm.dir, alarm.id, alarm.at);
      return;
    }
    this.counts.failed++;
    const retries = alarm.retries + 1;
    if (retries > this.maxRetries) {
      this.counts.abandoned++;
      this.logger.warn({ durableObject: alarm.className, script: alarm.script, id: alarm.id, err: failure }, `Durable Object alarm of ${alarm.className} failed ${retries} times; given up`);
      this.registry.finishAlarm(alarm.dir, alarm.id, alarm.at);
      return;
    }
    const delay = this.retryBaseMs * 2 ** (retries - 1);
    this.logger.info({ durableObject: alarm.className, script: alarm.script, id: alarm.id, err: failure, retry: retries }, `Durable Object alarm of ${alarm.className} failed; retry ${retries} in ${delay} ms`);
    this.registry.retryAlarm(alarm.dir, alarm.id, alarm.at, retries, Date.now() + delay);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
