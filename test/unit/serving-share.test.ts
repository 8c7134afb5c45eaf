// The share accounting of src/runtime/serving-share.ts on a fake clock: the serving thread's busy
// time is shared out by what each worker was charged, a worker over its share of a saturated
// thread is deferred and released at its limited rate, and nobody waits when the thread is not
// saturated, when a worker is alone, or when a worker has few entries running. Counts only.
import { describe, expect, it } from 'vitest';
import { ServingShare, ShareOverflowError, type ShareAccount, type ServingShareOptions } from '../../src/runtime/serving-share.js';

/** A share on a fake clock: `advance(ms, busyFraction)` moves time and the thread's busy time;
 *  drain ticks run only when `tick()` is called. */
function fakeShare(options: ServingShareOptions = {}) {
  let now = 0;
  let busy = 0;
  const ticks: (() => void)[] = [];
  const share = new ServingShare({ now: () => now, busyMs: () => busy, schedule: (run) => ticks.push(run), ...options });
  return {
    share,
    advance(ms: number, busyFraction: number) {
      now += ms;
      busy += ms * busyFraction;
    },
    /** run the pending drain tick (at most one is pending at a time) */
    tick() {
      const run = ticks.shift();
      run?.();
      return run !== undefined;
    },
    pendingTicks: () => ticks.length,
  };
}

/** Admit an entry; answers whether it was deferred, and a flag set when it is released. */
function enter(share: ServingShare, account: ShareAccount, units = 1): { deferred: boolean; released: () => boolean } {
  let released = false;
  const wait = share.admit(account, units);
  if (!wait) return { deferred: false, released: () => true };
  void wait.then(() => (released = true));
  return { deferred: true, released: () => released };
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Drive two workers through `windows` windows of 10 ms at `busy` utilization: each window the
 * heavy one is charged `heavyUnits`, the light one `lightUnits`, as entries that finish at once
 * (the heavy one keeps `heavyInFlight` entries running throughout).
 */
function load(t: ReturnType<typeof fakeShare>, heavy: ShareAccount, light: ShareAccount, windows: number, busy: number, heavyUnits = 30, lightUnits = 3) {
  for (let w = 0; w < windows; w++) {
    for (let i = 0; i < lightUnits; i++) {
      expect(t.share.admit(light)).toBeNull();
      t.share.finished(light);
    }
    for (let i = 0; i < heavyUnits; i++) t.share.charge(heavy);
    t.advance(10, busy);
  }
}

describe('the serving thread share', () => {
  it('shares the busy time out by units charged, decaying with the half-life', () => {
    const t = fakeShare({ halfLifeMs: 100 });
    const a = t.share.account('a');
    const b = t.share.account('b');
    t.share.charge(a, 3);
    t.share.charge(b, 1);
    t.advance(10, 0.8);
    // the entry is charged 1 unit, then rolls the window: 8 ms busy, 4 units to a, 1 to b
    expect(t.share.admit(a)).toBeNull();
    expect(a.usageMs).toBeCloseTo(6.4);
    expect(b.usageMs).toBeCloseTo(1.6);
    expect(t.share.utilization).toBeCloseTo(0.8);
    expect(t.share.saturated).toBe(true);
    // 100 ms later, nothing busy in between: both have halved
    t.advance(100, 0);
    t.share.admit(b);
    expect(a.usageMs).toBeCloseTo(3.2);
    expect(b.usageMs).toBeCloseTo(0.8);
    expect(t.share.saturated).toBe(false);
  });

  it('defers the entries of a worker over its share of a saturated thread, never the other one', async () => {
    const t = fakeShare();
    const heavy = t.share.account('heavy');
    const light = t.share.account('light');
    for (let i = 0; i < 8; i++) expect(t.share.admit(heavy)).toBeNull(); // 8 running
    load(t, heavy, light, 20, 0.95);
    const entries = Array.from({ length: 10 }, () => enter(t.share, heavy));
    expect(entries.filter((e) => e.deferred)).toHaveLength(10);
    expect(heavy.deferred).toBe(10);
    expect(t.share.waitingEntries).toBe(10);
    // the light worker still enters at once
    expect(t.share.admit(light)).toBeNull();
    expect(light.deferred).toBe(0);
    expect(t.share.counts()).toEqual([{ worker: 'heavy', deferred: 10, overflowed: 0, byAccount: 0 }]);

    // while the thread stays saturated, a tick releases only what the limited rate allows
    t.advance(1, 0.95);
    t.tick();
    await flush();
    const afterOne = entries.filter((e) => e.released()).length;
    expect(afterOne).toBeLessThan(10);

    // once the thread is not saturated any more, the rest are released (at the whole thread's rate)
    t.advance(20, 0);
    while (t.pendingTicks()) {
      t.advance(1, 0);
      t.tick();
    }
    await flush();
    expect(entries.filter((e) => e.released())).toHaveLength(10);
    expect(t.share.waitingEntries).toBe(0);
  });

  it('defers nobody when the thread is not saturated', () => {
    const t = fakeShare();
    const heavy = t.share.account('heavy');
    const light = t.share.account('light');
    for (let i = 0; i < 8; i++) expect(t.share.admit(heavy)).toBeNull();
    load(t, heavy, light, 20, 0.3);
    for (let i = 0; i < 20; i++) expect(t.share.admit(heavy)).toBeNull();
    expect(heavy.deferred).toBe(0);
  });

  it('never defers a worker alone on the thread, however busy', () => {
    const t = fakeShare();
    const only = t.share.account('only');
    for (let w = 0; w < 30; w++) {
      for (let i = 0; i < 50; i++) expect(t.share.admit(only)).toBeNull();
      t.advance(10, 1);
    }
    expect(only.deferred).toBe(0);
    expect(only.inFlight).toBe(1500);
  });

  it('never defers a worker with fewer entries running than the floor', () => {
    const t = fakeShare({ minInFlight: 4 });
    const heavy = t.share.account('heavy');
    const light = t.share.account('light');
    load(t, heavy, light, 20, 0.95);
    expect(heavy.limited).toBe(true);
    for (let i = 0; i < 4; i++) expect(t.share.admit(heavy)).toBeNull(); // 0..3 running when asked
    expect(t.share.admit(heavy)).not.toBeNull(); // the fifth, with 4 running
    for (let i = 0; i < 4; i++) t.share.finished(heavy);
    expect(heavy.inFlight).toBe(0);
  });

  it('does not limit an incumbent while a newcomer is still being measured', () => {
    const t = fakeShare();
    const incumbent = t.share.account('incumbent');
    const newcomer = t.share.account('newcomer');
    for (let w = 0; w < 30; w++) {
      t.share.charge(incumbent, 10);
      t.advance(10, 0.9);
      t.share.admit(incumbent);
      t.share.finished(incumbent);
    }
    // the newcomer arrives and soon uses far more than the incumbent
    load(t, newcomer, incumbent, 3, 0.95, 60, 2);
    expect(incumbent.limited).toBe(false);
    load(t, newcomer, incumbent, 60, 0.95, 60, 2);
    expect(incumbent.limited).toBe(false);
    expect(newcomer.limited).toBe(true);
  });

  it('runs a deferred entry that waited maxWaitMs, whatever the share says', async () => {
    const t = fakeShare({ maxWaitMs: 100, limitedShare: 0.000001 });
    const heavy = t.share.account('heavy');
    const light = t.share.account('light');
    for (let i = 0; i < 8; i++) t.share.admit(heavy);
    load(t, heavy, light, 20, 0.95);
    const entry = enter(t.share, heavy);
    expect(entry.deferred).toBe(true);
    for (let i = 0; i < 99; i++) {
      t.advance(1, 1);
      t.tick();
    }
    await flush();
    expect(entry.released()).toBe(false);
    t.advance(2, 1);
    t.tick();
    await flush();
    expect(entry.released()).toBe(true);
  });

  it('refuses an entry past the queue bound with an error naming the worker, and counts it', () => {
    const t = fakeShare({ maxQueue: 5 });
    const heavy = t.share.account('heavy');
    const light = t.share.account('light');
    for (let i = 0; i < 8; i++) t.share.admit(heavy);
    load(t, heavy, light, 20, 0.95);
    for (let i = 0; i < 5; i++) expect(enter(t.share, heavy).deferred).toBe(true);
    expect(() => t.share.admit(heavy)).toThrow(ShareOverflowError);
    expect(() => t.share.admit(heavy)).toThrow(/worker "heavy" is over its share of the serving thread and has 5 requests waiting/);
    expect(t.share.counts()).toEqual([{ worker: 'heavy', deferred: 5, overflowed: 2, byAccount: 0 }]);
  });

  it('when disabled, accounts but defers nothing', () => {
    const t = fakeShare({ enabled: false });
    const heavy = t.share.account('heavy');
    const light = t.share.account('light');
    for (let i = 0; i < 8; i++) t.share.admit(heavy);
    load(t, heavy, light, 20, 0.95);
    expect(heavy.usageMs).toBeGreaterThan(light.usageMs);
    for (let i = 0; i < 20; i++) expect(t.share.admit(heavy)).toBeNull();
    expect(heavy.deferred).toBe(0);
  });
});

/**
 * Drive groups of workers through `windows` windows of 10 ms at `busy` utilization: each window
 * every worker of a group is charged `units` entries that finish at once.
 */
function loadGroups(t: ReturnType<typeof fakeShare>, groups: [ShareAccount[], number][], windows: number, busy: number) {
  for (let w = 0; w < windows; w++) {
    for (const [workers, units] of groups) {
      for (const worker of workers) {
        for (let i = 0; i < units; i++) {
          expect(t.share.admit(worker)).toBeNull();
          t.share.finished(worker);
        }
      }
    }
    t.advance(10, busy);
  }
}

/** Eight workers of one account, each a little under the fair share per worker, and two workers
 *  of another account, each a little over it (units a window: 8 x 4 against 2 x 5). */
function spreadAccount(options: ServingShareOptions = {}, attackerAccount = 'attacker', neighbourAccount = 'neighbour') {
  const t = fakeShare(options);
  const spread = Array.from({ length: 8 }, (_, i) => t.share.account(`spread${i}`, attackerAccount));
  const neighbours = [t.share.account('n0', neighbourAccount), t.share.account('n1', neighbourAccount)];
  loadGroups(t, [[spread, 4], [neighbours, 5]], 20, 0.9);
  return { t, spread, neighbours };
}

describe('the serving thread share, per account', () => {
  it("limits an account's workers when the account is over its share, though none of them is over its own", () => {
    const { t, spread, neighbours } = spreadAccount();
    expect(spread.filter((w) => w.limited)).toHaveLength(0);
    expect(spread[0].tenant.limited).toBe(true);
    expect(neighbours[0].tenant.limited).toBe(false);
    // the floor counts the account's entries running, over all its workers: one running in each of
    // four workers, and the fifth worker's first entry waits
    for (let i = 0; i < 4; i++) expect(t.share.admit(spread[i])).toBeNull();
    expect(enter(t.share, spread[4]).deferred).toBe(true);
    expect(enter(t.share, spread[5]).deferred).toBe(true);
    expect(spread[4].deferred + spread[5].deferred).toBe(2);
    // the other account's workers (over their fair share per worker, but with nothing running) enter
    for (const n of neighbours) expect(t.share.admit(n)).toBeNull();
    expect(neighbours[0].deferred + neighbours[1].deferred).toBe(0);
  });

  it('with one account (a single-tenant install) the account level never limits: per worker as before', () => {
    const { t, spread } = spreadAccount({}, '', '');
    expect(spread[0].tenant.limited).toBe(false);
    expect(spread.filter((w) => w.limited)).toHaveLength(0);
    for (let i = 0; i < 4; i++) expect(t.share.admit(spread[i])).toBeNull();
    for (let i = 0; i < 8; i++) expect(t.share.admit(spread[4])).toBeNull();
    expect(t.share.counts()).toEqual([]);
  });

  it('refuses past the queue bound naming the account when the account is what limited the worker', () => {
    const { t, spread } = spreadAccount({ maxQueue: 2 });
    for (let i = 0; i < 4; i++) t.share.admit(spread[i]);
    expect(enter(t.share, spread[4]).deferred).toBe(true);
    expect(enter(t.share, spread[4]).deferred).toBe(true);
    expect(() => t.share.admit(spread[4])).toThrow(ShareOverflowError);
    expect(() => t.share.admit(spread[4])).toThrow('account "attacker" is over its share of the serving thread and its worker "spread4" has 2 requests waiting already');
    expect(t.share.counts()).toEqual([{ worker: 'spread4', deferred: 2, overflowed: 2, byAccount: 2 }]);
  });

  it("releases an account-limited worker's deferred entries in order, all of them once the thread is not saturated", async () => {
    const { t, spread } = spreadAccount();
    for (let i = 0; i < 4; i++) t.share.admit(spread[i]);
    const order: number[] = [];
    for (let i = 0; i < 20; i++) {
      const wait = t.share.admit(spread[6]);
      expect(wait).not.toBeNull();
      void wait!.then(() => order.push(i));
    }
    t.advance(30, 0);
    while (t.pendingTicks()) {
      t.advance(1, 0);
      t.tick();
    }
    await flush();
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(t.share.waitingEntries).toBe(0);
  });
});

describe('an entry with a wait bound of its own (an event with a short wall limit)', () => {
  it('runs by its own bound, with everything queued before it and in order; what came after waits on', async () => {
    const t = fakeShare({ limitedShare: 0.000001 });
    const heavy = t.share.account('heavy');
    const light = t.share.account('light');
    for (let i = 0; i < 8; i++) t.share.admit(heavy);
    load(t, heavy, light, 20, 0.95);
    const order: string[] = [];
    const queue = (name: string, maxWaitMs?: number) => {
      const wait = t.share.admit(heavy, 1, maxWaitMs);
      expect(wait).not.toBeNull();
      void wait!.then(() => order.push(name));
    };
    queue('a');
    queue('b', 20);
    queue('c');
    queue('d', 500);
    for (let i = 0; i < 19; i++) {
      t.advance(1, 1);
      t.tick();
    }
    await flush();
    expect(order).toEqual([]);
    t.advance(2, 1);
    t.tick();
    await flush();
    expect(order).toEqual(['a', 'b']);
    for (let i = 0; i < 480; i++) {
      t.advance(1, 1);
      t.tick();
    }
    await flush();
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect(t.share.waitingEntries).toBe(0);
  });
});

describe('a removed worker', () => {
  it('is forgotten once its last running entry ends, not kept for ever', () => {
    const { share } = fakeShare();
    const gone = share.account('gone', 'a');
    expect(enter(share, gone).deferred).toBe(false);
    share.forget('gone'); // still running: kept for now
    share.finished(gone);
    // its account is gone: a worker of that name deployed later starts afresh
    expect(share.account('gone', 'a')).not.toBe(gone);
  });

  it('is kept when deployed again before its last entry ended', () => {
    const { share } = fakeShare();
    const kept = share.account('kept', 'a');
    expect(enter(share, kept).deferred).toBe(false);
    share.forget('kept');
    expect(share.account('kept', 'a')).toBe(kept);
    share.finished(kept);
    expect(share.account('kept', 'a')).toBe(kept);
  });
});
