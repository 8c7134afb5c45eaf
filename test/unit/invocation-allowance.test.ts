// The guest's count of its request's invocation allowance (sandbox/invocation.ts), run in Node: an
// invocation the host already ended (its code runs on) is told so by the host's refusal of its
// call, in the words src/runtime/outside-invocation.ts sends, and from then on spends nothing of
// the allowance the request's other invocations in this isolate share.
import { describe, expect, it } from 'vitest';
import { beginInvocation, endInvocation, refusedOnHost, runAs, spendInvocation } from '../../sandbox/invocation.js';
import { refusalOutsideInvocation } from '../../src/runtime/outside-invocation.js';
import { TOO_MANY_INVOCATIONS } from '../../protocol/request-tree.js';
import { KV_OPS, OPS } from '../../protocol/wall.js';

/** What the host answers `op` made by an invocation it no longer has in flight. */
function hostRefusal(op: string): Error {
  const message = refusalOutsideInvocation(op, false);
  expect(message).not.toBeNull();
  return new Error(message!);
}

const spend = (id: number) => runAs(id, () => spendInvocation());

describe('invocation allowance: an invocation the host ended', () => {
  for (const op of [OPS.serviceFetch, OPS.serviceRpc]) {
    it(`is recognized by the host's refusal of ${op} and stops spending the request's allowance`, () => {
      const ended = beginInvocation(1001, 3, 77);
      const live = beginInvocation(1002, 3, 77);
      try {
        const state = spend(1001);
        expect(state).toBe(ended);
        refusedOnHost(state, hostRefusal(op), op);
        expect(ended.endedOnHost).toBe(true);
        // its calls cross uncounted (the host refuses each), however many it makes
        for (let i = 0; i < 5; i++) expect(spend(1001)).toBeUndefined();
        // the live invocation of the same request keeps the whole allowance it was handed
        for (let i = 0; i < 3; i++) expect(spend(1002)).toBe(live);
        expect(() => spend(1002)).toThrow(TOO_MANY_INVOCATIONS);
      } finally {
        endInvocation(1001);
        endInvocation(1002);
      }
    });
  }

  it('is not inferred from another error, nor from the refusal of another op', () => {
    const state = beginInvocation(1003, 3, 78);
    try {
      refusedOnHost(spend(1003), new Error('env.SVC.fetch(): no worker named "x" is deployed'), OPS.serviceFetch);
      refusedOnHost(spend(1003), hostRefusal(KV_OPS.get), OPS.serviceFetch);
      expect(state.endedOnHost).toBeUndefined();
      expect(state.invocationsLeft).toBe(1);
    } finally {
      endInvocation(1003);
    }
  });

  it('still takes the cap refusal as the request spent', () => {
    const state = beginInvocation(1004, 3, 79);
    try {
      refusedOnHost(spend(1004), new Error(TOO_MANY_INVOCATIONS), OPS.serviceRpc);
      expect(() => spend(1004)).toThrow(TOO_MANY_INVOCATIONS);
    } finally {
      endInvocation(1004);
    }
  });
});
