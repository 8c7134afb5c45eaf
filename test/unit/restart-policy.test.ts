// The supervisor's decisions (src/app/restart-policy.ts): backoff when the serving process
// keeps dying, blame for what was running, quarantine after repeated blame.
import { describe, expect, it } from 'vitest';
import { RestartPolicy } from '../../src/app/restart-policy.js';

describe('RestartPolicy', () => {
  it('restarts at once, then backs off while the process keeps dying young, and resets once it lived', () => {
    const policy = new RestartPolicy({ backoffBaseMs: 100, backoffMaxMs: 1000, stableMs: 10_000 });
    const delays = Array.from({ length: 7 }, () => policy.record('exit', 50, [], 0, []).delayMs);
    expect(delays).toEqual([0, 100, 200, 400, 800, 1000, 1000]);
    expect(policy.record('exit', 60_000, [], 0, []).delayMs).toBe(0);
    expect(policy.restarts).toEqual({ exit: 8, hang: 0 });
  });

  it('backs off per serving-process slot: one slot crashing in a loop does not delay another\'s restart', () => {
    const policy = new RestartPolicy({ backoffBaseMs: 100, backoffMaxMs: 1000, stableMs: 10_000 });
    const now = Date.now();
    expect([0, 1, 2].map(() => policy.record('exit', 50, [], 0, [], now, 1).delayMs)).toEqual([0, 100, 200]);
    expect(policy.record('exit', 50, [], 0, [], now, 0).delayMs).toBe(0);
    expect(policy.record('exit', 50, [], 0, [], now, 1).delayMs).toBe(400);
    expect(policy.restarts.exit).toBe(5);
  });

  it('blames only long-running invocations when there were any, else everything in flight', () => {
    const policy = new RestartPolicy({ suspectAgeMs: 500 });
    const now = 10_000;
    expect(policy.record('hang', 60_000, [{ worker: 'attacker', since: now - 900 }, { worker: 'neighbour', since: now - 1 }], now, ['neighbour'], now).blamed).toEqual(['attacker']);
    expect(policy.record('exit', 60_000, [{ worker: 'a', since: now - 1 }], now, ['b'], now).blamed.sort()).toEqual(['a', 'b']);
  });

  it('quarantines a worker blamed for the third restart in the window, for a while', () => {
    const policy = new RestartPolicy({ quarantineAfter: 3, blameWindowMs: 60_000, quarantineMs: 120_000 });
    const at = (t: number) => policy.record('exit', 60_000, [{ worker: 'x', since: t - 1000 }], t, [], t);
    expect(at(0).quarantined).toEqual([]);
    expect(at(61_000).quarantined).toEqual([]); // the first strike is out of the window
    const third = at(62_000);
    expect(third.quarantined).toEqual([]);
    const fourth = at(63_000);
    expect(fourth.quarantined.map((q) => q.worker)).toEqual(['x']);
    expect(fourth.quarantined[0].reason).toMatch(/Worker "x" is quarantined: it was running when the server crashed or hung 3 times in the last 1 minute;/);
    expect(policy.isQuarantined('x', 63_000 + 119_000)).toBe(true);
    expect(policy.active(63_000 + 121_000)).toEqual([]);
  });
});
