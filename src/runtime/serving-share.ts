// Each worker's share of the serving thread (issue 22). Guest code never runs on this thread, but
// what a worker makes the host do does: entering its isolate, the crossings of its op calls, the
// bookkeeping of every invocation. A worker that calls itself through service bindings turns one
// request into 32 invocations and ~60 crossings, all on this one thread, and a neighbour's request
// waits behind them. A gate of N calls per loop turn only reordered that work (bench/README.md,
// "service-binding calls taking turns"): the attacker got as many answers, the thread was as busy.
//
// So: every worker is charged for what it makes this thread do (units: an entry, an op call), and
// the thread's measured busy time (event-loop utilization) is shared out by those units into a
// decaying per-worker estimate of serving-thread time. While the thread is saturated, a worker
// whose estimate is over its fair share (the busy workers' total over their number) and that has
// several entries running already has its new entries deferred: queued, and released at a rate
// worth its part of `limitedShare` of the thread, so the others' entries go first and its work no
// longer fills every loop turn. Not the fair share itself: the bench's neighbour, a client that
// keeps the thread ~80% busy on its own, still saw 3.5-4x its calm p99 with the attacker held at
// its fair share (bench/README.md, issue 22, round 8). When the thread is not saturated nobody
// waits; a worker alone on the server is never over its share; a worker with few entries running
// (a client waiting for each answer before the next request) is never deferred.
// Deferral never drops a request: an entry that has waited `maxWaitMs` runs whatever the share
// says; only a worker whose queue passes `maxQueue` has its next entry refused (a 503 naming it).
//
// Accounts too: a share per worker alone would give a tenant that spreads one attack over many
// workers a share per worker. So the workers' estimates are also summed per account, and a worker
// is limited when it is over its fair share among the busy workers OR its account is over its
// fair share among the busy accounts. With one account (a single-tenant install) the account
// level never limits anyone: the per-worker behaviour is all there is. Deferral and refusal stay
// per worker (each worker's own queue, released at its part of its account's limited share).
//
// Every kind of entry takes its turn the same way: requests and service calls (Runtime.fetch,
// Runtime.rpc) and the events (a Durable Object's events, a queue batch, a cron event, a WebSocket
// message: WorkerInstance). Each worker's queue is first in, first out, so events that arrive in
// order (one object's, one socket's) start in order; an event with a wall limit shorter than
// `maxWaitMs` waits at most that long, and everything queued before it is released with it.
//
// Cheap on the hot path: an entry or op call adds to two numbers; the window is rolled (one
// eventLoopUtilization() read, a walk over the workers charged in it) at most every `windowMs`.
import { performance } from 'node:perf_hooks';

export interface ServingShareOptions {
  /** false: nobody is ever deferred (the accounting still runs; CINDER_SERVING_SHARE=0) */
  enabled?: boolean;
  /** false: no account level, each worker's share only (CINDER_SERVING_SHARE_ACCOUNTS=0) */
  accounts?: boolean;
  /** event-loop utilization over the last window at or over which the thread is saturated (0-1) */
  saturation?: number;
  /** while the thread is saturated, the part of it (0-1) the workers over their share may start
   *  work worth, divided among the busy workers (each over-share worker gets this / busy workers) */
  limitedShare?: number;
  /** a worker with fewer entries running than this is never deferred */
  minInFlight?: number;
  /** how often the utilization is read and the estimates brought up to date (ms) */
  windowMs?: number;
  /** half-life of a worker's serving-thread estimate (ms); the short estimate's is a fifth */
  halfLifeMs?: number;
  /** a deferred entry runs after this long whatever the share says (ms) */
  maxWaitMs?: number;
  /** deferred entries one worker may have waiting; one more is refused */
  maxQueue?: number;
  /** how often deferred entries are looked at while any wait (ms) */
  drainMs?: number;
  /** test seams: the clock (ms) and the thread's busy time so far (ms) */
  now?: () => number;
  busyMs?: () => number;
  /** test seam: schedule the next drain tick (default setTimeout) */
  schedule?: (run: () => void, ms: number) => void;
  /** test seam: workers held as over their share whatever the estimates say (an ordering test
   *  needs every event of a worker deferred, which real estimates give only under real load) */
  limitedFor?: (worker: string) => boolean;
}

/** What one worker is charged; the instance keeps a reference, so charging is a field update. */
export class ShareAccount {
  /** units charged in the current window */
  units = 0;
  /** entries begun in the current window */
  entries = 0;
  /** decaying estimate of its serving-thread time (ms) and of its entries */
  usageMs = 0;
  entriesDecayed = 0;
  /** the same estimate with a short half-life: a worker that just arrived is seen within ms */
  recentMs = 0;
  /** over its share: set when both estimates pass the fair share, cleared below half of it */
  limited = false;
  /** windows in a row it has been over the fair share on both estimates */
  overStreak = 0;
  /** entries started and not finished */
  inFlight = 0;
  /** queued entries with a wait bound of their own (shorter than maxWaitMs) */
  ownDeadlines = 0;
  /** in the window's list of charged accounts */
  touched = false;
  /** deferred entries, oldest first; each runs at `until` whatever the share says */
  readonly queue: { release: () => void; until: number; own: boolean }[] = [];
  /** serving-thread time (ms) it may still start while it has entries waiting */
  tokensMs = 0;
  /** entries deferred, and refused because the queue was full, so far */
  deferred = 0;
  overflowed = 0;
  /** of those deferred, the ones its account's share held back (the worker was within its own) */
  deferredByAccount = 0;
  /** its worker was removed while entries of it were still queued or running: forget it after */
  removed = false;

  constructor(
    readonly worker: string,
    /** the account the worker belongs to */
    public tenant: ShareTenant,
  ) {}

  /** Estimated serving-thread time one of its entries brings (its op calls included), ms. */
  costPerEntryMs(): number {
    return this.entriesDecayed > 0.5 ? this.usageMs / this.entriesDecayed : 0;
  }
}

/** An account's workers taken together: their estimates summed each window. */
export class ShareTenant {
  /** sums of its busy workers' estimates (ms), as of the last window */
  usageMs = 0;
  recentMs = 0;
  /** its busy workers, and their deferred entries, as of the last window */
  busyWorkers = 0;
  waiting = 0;
  /** entries of its workers started and not finished */
  inFlight = 0;
  limited = false;
  overStreak = 0;
  /** workers of it known to the share (it is forgotten with its last) */
  workers = 0;

  constructor(readonly id: string) {}
}

/** Windows in a row a worker must be over its share before it is limited (10 x 10 ms). */
const OVER_WINDOWS = 10;

/** What the limited flag is decided on, for a worker and for an account alike. */
interface LimitState {
  usageMs: number;
  recentMs: number;
  limited: boolean;
  overStreak: number;
}

/** Thrown (as a refusal) when a worker's deferred entries pass the bound. */
export class ShareOverflowError extends Error {}

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? value : undefined;
}

/** The options from the environment (operators tune these; README "The serving thread's share"). */
export function servingShareOptionsFromEnv(): ServingShareOptions {
  const enabled = process.env.CINDER_SERVING_SHARE;
  const accounts = process.env.CINDER_SERVING_SHARE_ACCOUNTS;
  return {
    accounts: accounts === undefined ? undefined : !['0', 'off', 'false'].includes(accounts.toLowerCase()),
    enabled: enabled === undefined ? undefined : !['0', 'off', 'false'].includes(enabled.toLowerCase()),
    saturation: envNumber('CINDER_SERVING_SHARE_SATURATION'),
    minInFlight: envNumber('CINDER_SERVING_SHARE_MIN_IN_FLIGHT'),
    limitedShare: envNumber('CINDER_SERVING_SHARE_LIMITED'),
    maxWaitMs: envNumber('CINDER_SERVING_SHARE_MAX_WAIT_MS'),
    maxQueue: envNumber('CINDER_SERVING_SHARE_MAX_QUEUE'),
  };
}

export class ServingShare {
  readonly enabled: boolean;
  private readonly byAccount: boolean;
  private readonly saturation: number;
  private readonly limitedShare: number;
  private readonly minInFlight: number;
  private readonly windowMs: number;
  private readonly halfLifeMs: number;
  private readonly maxWaitMs: number;
  private readonly maxQueue: number;
  private readonly drainMs: number;
  private readonly now: () => number;
  private readonly busyMs: () => number;
  private readonly schedule: (run: () => void, ms: number) => void;
  private readonly limitedFor: ((worker: string) => boolean) | undefined;

  private readonly accounts = new Map<string, ShareAccount>();
  /** each account's workers taken together, by account id */
  private readonly tenants = new Map<string, ShareTenant>();
  /** accounts with busy workers as of the last window: the ones the account level divides by */
  private activeTenants: ShareTenant[] = [];
  /** accounts charged in the current window */
  private touched: ShareAccount[] = [];
  /** accounts whose estimate has not decayed away: the ones the share is divided among */
  private readonly busy = new Set<ShareAccount>();
  /** accounts with deferred entries */
  private readonly waiting = new Set<ShareAccount>();
  private windowStart: number;
  private windowBusyStart: number;
  private windowUnits = 0;
  /** the last closed window's utilization, and whether it was at or over `saturation` */
  utilization = 0;
  saturated = false;
  /** sum of the busy accounts' estimates (ms), long and short half-life */
  private totalUsageMs = 0;
  private totalRecentMs = 0;
  private draining = false;
  private lastDrain = 0;

  constructor(options: ServingShareOptions = {}) {
    this.enabled = options.enabled !== false;
    this.byAccount = options.accounts !== false;
    this.saturation = options.saturation ?? 0.5;
    this.limitedShare = options.limitedShare ?? 0.3;
    this.minInFlight = options.minInFlight ?? 4;
    this.windowMs = options.windowMs ?? 10;
    this.halfLifeMs = options.halfLifeMs ?? 250;
    this.maxWaitMs = options.maxWaitMs ?? 1_000;
    this.maxQueue = options.maxQueue ?? 4_096;
    this.drainMs = options.drainMs ?? 1;
    this.now = options.now ?? (() => performance.now());
    if (options.busyMs) this.busyMs = options.busyMs;
    else {
      const start = performance.eventLoopUtilization();
      this.busyMs = () => performance.eventLoopUtilization(start).active;
    }
    this.schedule = options.schedule ?? ((run, ms) => setTimeout(run, ms));
    this.limitedFor = options.limitedFor;
    this.windowStart = this.now();
    this.windowBusyStart = this.busyMs();
  }

  /**
   * The share of a worker (made on first use; kept by the instances that charge it). `tenant`: the
   * account that owns it ('' when there are no accounts); a worker name deleted and taken by
   * another account moves to that account's share.
   */
  account(worker: string, tenant = ''): ShareAccount {
    let account = this.accounts.get(worker);
    if (!account) {
      this.accounts.set(worker, (account = new ShareAccount(worker, this.tenantOf(tenant))));
      account.tenant.workers++;
    } else if (account.tenant.id !== tenant) {
      account.tenant.inFlight -= account.inFlight;
      this.leave(account.tenant);
      account.tenant = this.tenantOf(tenant);
      account.tenant.workers++;
      account.tenant.inFlight += account.inFlight;
    }
    account.removed = false; // (deployed again before its last entry ended)
    return account;
  }

  private tenantOf(id: string): ShareTenant {
    let tenant = this.tenants.get(id);
    if (!tenant) this.tenants.set(id, (tenant = new ShareTenant(id)));
    return tenant;
  }

  private leave(tenant: ShareTenant): void {
    if (--tenant.workers <= 0) this.tenants.delete(tenant.id);
  }

  /** A worker was removed: forget its estimate (anything deferred or running keeps it). */
  forget(worker: string): void {
    const account = this.accounts.get(worker);
    if (!account) return;
    if (account.queue.length || account.inFlight) {
      account.removed = true; // finished() forgets it once the last one ends
      return;
    }
    this.accounts.delete(worker);
    this.leave(account.tenant);
    if (this.busy.delete(account)) {
      this.totalUsageMs -= account.usageMs;
      this.totalRecentMs -= account.recentMs;
    }
  }

  /** Charge `units` of serving-thread work (an op call) to an account. */
  charge(account: ShareAccount, units = 1): void {
    account.units += units;
    this.windowUnits += units;
    if (!account.touched) {
      account.touched = true;
      this.touched.push(account);
    }
  }

  /**
   * An entry of `account` is about to start (`units`: what it is charged). Answers null when it
   * may start now, else a promise that resolves when it may (deferred); throws ShareOverflowError
   * when the worker already has `maxQueue` entries waiting. Every entry admitted (now or later)
   * must be followed by finished(). `maxWaitMs`: an entry's own bound on its wait, when shorter
   * than the share's (an event with a short wall limit of its own).
   */
  admit(account: ShareAccount, units = 1, maxWaitMs?: number): Promise<void> | null {
    this.charge(account, units);
    account.entries++;
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) this.roll(now);
    if (account.queue.length === 0 && !(this.enabled && this.saturated && this.limits(account))) {
      account.inFlight++;
      account.tenant.inFlight++;
      return null;
    }
    if (account.queue.length >= this.maxQueue) {
      account.overflowed++;
      const tenant = account.tenant;
      throw new ShareOverflowError(
        tenant.limited && !account.limited && tenant.id !== ''
          ? `account "${tenant.id}" is over its share of the serving thread and its worker "${account.worker}" has ${this.maxQueue} requests waiting already`
          : `worker "${account.worker}" is over its share of the serving thread and has ${this.maxQueue} requests waiting already`,
      );
    }
    account.deferred++;
    if (account.tenant.limited && !account.limited) account.deferredByAccount++;
    const own = maxWaitMs !== undefined && maxWaitMs < this.maxWaitMs;
    if (own) account.ownDeadlines++;
    return new Promise<void>((release) => {
      account.queue.push({ release, until: now + (own ? Math.max(0, maxWaitMs) : this.maxWaitMs), own });
      this.waiting.add(account);
      this.startDrain();
    });
  }

  /** Whether a new entry of this worker is held back (the thread being saturated): the worker is
   *  over its share with `minInFlight` entries running, or its account is, with that many running
   *  over its workers (an account spread over many workers has few running in each). */
  private limits(account: ShareAccount): boolean {
    return ((account.limited || this.limitedFor?.(account.worker) === true) && account.inFlight >= this.minInFlight) || (account.tenant.limited && account.tenant.inFlight >= this.minInFlight);
  }

  /** An admitted entry finished. */
  finished(account: ShareAccount): void {
    account.inFlight--;
    account.tenant.inFlight--;
    if (account.removed && account.inFlight === 0 && account.queue.length === 0 && this.accounts.get(account.worker) === account) this.forget(account.worker);
  }

  /**
   * Whether an account is over its share of the busy accounts' serving-thread time: it becomes so
   * when both estimates have been over the fair share for OVER_WINDOWS windows in a row (the long
   * one says who has used the thread; the short one, and the windows in a row, keep an incumbent
   * from being limited while a newcomer's estimates are still growing), and stays so until its
   * long estimate falls under a quarter of the fair share (without that margin it would be let go
   * as soon as the limit had worked, and come straight back) or, with nothing deferred, under the
   * fair share on both estimates.
   */
  private updateLimited(account: LimitState, waiting: number, sharers: number, totalUsageMs: number, totalRecentMs: number): void {
    if (sharers < 2) {
      account.limited = false;
      account.overStreak = 0;
    } else if (account.limited) {
      // a worker with nothing waiting that is back under its fair share was not held back by the
      // limit (an incumbent flagged while a newcomer's estimates grew): let go
      const fair = totalUsageMs / sharers;
      account.limited = account.usageMs >= fair * 0.25 && (waiting > 0 || account.usageMs > fair || account.recentMs > totalRecentMs / sharers);
    }
    else {
      const over = account.usageMs > totalUsageMs / sharers && account.recentMs > totalRecentMs / sharers;
      account.overStreak = over ? account.overStreak + 1 : 0;
      account.limited = account.overStreak >= OVER_WINDOWS;
      if (account.limited) account.overStreak = 0;
    }
  }

  /** Deferred entries waiting now, over all workers. */
  get waitingEntries(): number {
    let n = 0;
    for (const account of this.waiting) n += account.queue.length;
    return n;
  }

  /** Every worker deferred or refused so far, with its counts (metrics). */
  counts(): { worker: string; deferred: number; overflowed: number; byAccount: number }[] {
    const out = [];
    for (const account of this.accounts.values()) if (account.deferred || account.overflowed) out.push({ worker: account.worker, deferred: account.deferred, overflowed: account.overflowed, byAccount: account.deferredByAccount });
    return out;
  }

  /** Close the window: read the thread's busy time, share it out by units, decay the estimates. */
  private roll(now: number): void {
    const elapsed = now - this.windowStart;
    const busyNow = this.busyMs();
    const busy = Math.max(0, busyNow - this.windowBusyStart);
    this.utilization = elapsed > 0 ? Math.min(1, busy / elapsed) : 0;
    this.saturated = this.utilization >= this.saturation;
    const msPerUnit = this.windowUnits > 0 ? busy / this.windowUnits : 0;
    const decay = Math.pow(0.5, elapsed / this.halfLifeMs);
    const fastDecay = Math.pow(0.5, (5 * elapsed) / this.halfLifeMs);
    for (const account of this.busy) {
      account.usageMs *= decay;
      account.entriesDecayed *= decay;
      account.recentMs *= fastDecay;
    }
    for (const account of this.touched) {
      account.usageMs += account.units * msPerUnit;
      account.recentMs += account.units * msPerUnit;
      account.entriesDecayed += account.entries;
      account.units = 0;
      account.entries = 0;
      account.touched = false;
      this.busy.add(account);
    }
    let total = 0;
    let recent = 0;
    for (const account of this.busy) {
      // under a hundredth of a ms a half-life: no longer among those the thread is shared by
      if (account.usageMs < 0.01 && account.queue.length === 0) {
        this.busy.delete(account);
        account.limited = false;
      }
      else {
        total += account.usageMs;
        recent += account.recentMs;
      }
    }
    this.totalUsageMs = total;
    this.totalRecentMs = recent;
    for (const account of this.busy) this.updateLimited(account, account.queue.length, this.busy.size, total, recent);
    if (this.byAccount) this.rollTenants();
    this.touched = [];
    this.windowUnits = 0;
    this.windowStart = now;
    this.windowBusyStart = busyNow;
  }

  /** The account level: sum the busy workers' estimates per account, decide which are limited. */
  private rollTenants(): void {
    for (const tenant of this.activeTenants) {
      tenant.usageMs = 0;
      tenant.recentMs = 0;
      tenant.busyWorkers = 0;
      tenant.waiting = 0;
    }
    const active: ShareTenant[] = [];
    for (const account of this.busy) {
      const tenant = account.tenant;
      if (tenant.busyWorkers === 0) {
        // (a tenant not active last window may hold sums from before: start it afresh)
        tenant.usageMs = 0;
        tenant.recentMs = 0;
        tenant.waiting = 0;
        active.push(tenant);
      }
      tenant.busyWorkers++;
      tenant.usageMs += account.usageMs;
      tenant.recentMs += account.recentMs;
      tenant.waiting += account.queue.length;
    }
    for (const tenant of this.activeTenants) {
      if (tenant.busyWorkers === 0) {
        tenant.limited = false;
        tenant.overStreak = 0;
      }
    }
    this.activeTenants = active;
    for (const tenant of active) this.updateLimited(tenant, tenant.waiting, active.length, this.totalUsageMs, this.totalRecentMs);
  }

  private startDrain(): void {
    if (this.draining) return;
    this.draining = true;
    this.lastDrain = this.now();
    this.schedule(this.drain, this.drainMs);
  }

  private release(account: ShareAccount): void {
    account.inFlight++;
    account.tenant.inFlight++;
    const entry = account.queue.shift()!;
    if (entry.own) account.ownDeadlines--;
    entry.release();
  }

  /** Release the entries whose wait is up, and every entry queued before them (first in, first
   *  out: an object's or a socket's events start in the order they came). */
  private releaseDue(account: ShareAccount, now: number): void {
    if (account.ownDeadlines > 0) {
      let last = -1;
      for (let i = account.queue.length - 1; i >= 0 && last < 0; i--) if (account.queue[i].until <= now) last = i;
      for (let i = 0; i <= last; i++) this.release(account);
    }
    while (account.queue.length && account.queue[0].until <= now) this.release(account);
  }

  /**
   * Release deferred entries, the workers taking turns. Each waiting worker starts entries as its
   * tokens allow, each costing its estimated serving-thread time: they refill at its fair share
   * of a saturated thread while the thread is saturated, at the whole thread's rate when it is
   * not (so a long queue drains in steps, not in one burst). An entry that has waited maxWaitMs
   * starts whatever the tokens say. A timer, not setImmediate: the loop must be able to go idle
   * between ticks, or it would read as busy.
   */
  private readonly drain = (): void => {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) this.roll(now);
    const elapsed = Math.max(0, now - this.lastDrain);
    this.lastDrain = now;
    const limitedRate = this.limitedShare / Math.max(2, this.busy.size);
    const tenantRate = this.limitedShare / Math.max(2, this.activeTenants.length);
    for (const account of [...this.waiting]) {
      let rate = 1;
      if (this.enabled && this.saturated) {
        if (account.limited || this.limitedFor?.(account.worker)) rate = limitedRate;
        // an account's limited share divided among its busy workers
        if (account.tenant.limited) rate = Math.min(rate, tenantRate / Math.max(1, account.tenant.busyWorkers));
      }
      this.releaseDue(account, now);
      const cost = account.costPerEntryMs();
      account.tokensMs = Math.min(account.tokensMs + rate * elapsed, 2 * cost + rate * this.drainMs);
      while (account.queue.length && (account.tokensMs >= cost || !this.enabled)) {
        account.tokensMs -= cost;
        this.release(account);
      }
      if (account.queue.length === 0) {
        this.waiting.delete(account);
        account.tokensMs = 0;
      }
    }
    if (this.waiting.size === 0) {
      this.draining = false;
      return;
    }
    this.schedule(this.drain, this.drainMs);
  };
}
