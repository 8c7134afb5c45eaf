// Issue 22: a worker that calls itself through service bindings (30 calls per level, 3 levels: 32
// invocations per request) fills the serving thread with host work. Its share of the thread
// (src/runtime/serving-share.ts) defers its entries while it is over its share and the thread is
// saturated. Over a real server: a neighbour requested beside it gets every request answered,
// none of its entries deferred; the attacker's deferred entries are counted (runtime and
// /metrics), and deferral fails none of its requests. The same attacker alone is deferred never.
// The thread is treated as always saturated here (saturation 0), so what is asserted does not
// depend on how fast this machine is; counts only, no timings.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Metrics } from '../../src/observability/metrics.js';
import { registerServiceBindings } from '../../bindings/service/host.js';

const FAN_OUT = `export default { async fetch(request, env) {
  const level = Number(new URL(request.url).searchParams.get('level') || '0');
  if (level >= 3) return new Response('leaf');
  const calls = [];
  for (let i = 0; i < 30; i++) calls.push(env.SELF.fetch('https://fan/?level=' + (level + 1)).then((r) => r.text(), (e) => 'E:' + e.message));
  const results = await Promise.all(calls);
  // calls past the request's invocation cap are refused (as on Workers); any other failure, here
  // or below, is counted and answered
  let other = 0;
  for (const text of results) {
    if (text.startsWith('E:')) other += text.includes('Too many worker invocations') ? 0 : 1;
    else other += Number(/(\d+) other failures/.exec(text)?.[1] ?? 0);
  }
  return new Response(results.length + ' calls, ' + other + ' other failures');
} };`;
const ANSWERED = '200 30 calls, 0 other failures';

/** Neighbour requests per connection, one after another: at least this many, and until the
 *  attacker has had DEFERRED_AT_LEAST entries deferred (at most NEIGHBOUR_MAX_REQUESTS). */
const NEIGHBOUR_REQUESTS = 300;
const DEFERRED_AT_LEAST = 50;
const NEIGHBOUR_MAX_REQUESTS = 20_000;
const NEIGHBOUR_CONNECTIONS = 2;
const ATTACKER_CONNECTIONS = 3;

describe("a worker over its share of the serving thread waits; its neighbour does not", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(
      {
        neighbour: `export default { fetch() { return new Response('hello') } }`,
        // Limits far above what a fan-out request uses, so that only the share decides what
        // happens on a slow, loaded machine (a deferred call waits on the host, not in the guest).
        fanout: { code: FAN_OUT, bindings: { SELF: { type: 'service', service: 'fanout' } }, limits: { cpuMs: 5_000, wallMs: 120_000, subrequests: 1000 } },
      },
      { runtime: { servingShare: { saturation: 0 } } },
    );
    registerServiceBindings(server.runtime);
    // (the neighbour is not requested yet: the first test needs the attacker alone on the thread)
    expect((await server.request('fanout')).text).toBe('30 calls, 0 other failures');
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  /** Request the attacker from several connections until `done()`; its answers by status+body. */
  async function attack(done: () => boolean, atLeast: number): Promise<Map<string, number>> {
    const answers = new Map<string, number>();
    let sent = 0;
    await Promise.all(
      Array.from({ length: ATTACKER_CONNECTIONS }, async () => {
        while (!done() || sent < atLeast) {
          sent++;
          const res = await server.request('fanout');
          const key = `${res.status} ${res.text}`;
          answers.set(key, (answers.get(key) ?? 0) + 1);
        }
      }),
    );
    return answers;
  }

  it('the attacker alone is never deferred, however busy the thread', async () => {
    const before = server.runtime.share.account('fanout').deferred;
    const answers = await attack(() => true, 30);
    expect([...answers.keys()]).toEqual([ANSWERED]);
    expect(server.runtime.share.account('fanout').deferred - before).toBe(0);
  }, 120_000);

  it('beside a neighbour: the attacker is deferred and counted, every request of both is answered', async () => {
    const neighbourStatuses = new Map<string, number>();
    const fanout = server.runtime.share.account('fanout');
    let neighbourDone = false;
    let sent = 0;
    const neighbour = Promise.all(
      Array.from({ length: NEIGHBOUR_CONNECTIONS }, async () => {
        for (let i = 0; i < NEIGHBOUR_REQUESTS || (fanout.deferred < DEFERRED_AT_LEAST && i < NEIGHBOUR_MAX_REQUESTS); i++) {
          sent++;
          const res = await server.request('neighbour');
          const key = `${res.status} ${res.text}`;
          neighbourStatuses.set(key, (neighbourStatuses.get(key) ?? 0) + 1);
        }
      }),
    ).finally(() => (neighbourDone = true));
    const attacker = attack(() => neighbourDone, 30);
    await neighbour;
    const answers = await attacker;

    expect(Object.fromEntries(neighbourStatuses)).toEqual({ '200 hello': sent });
    // deferral never fails a request: every fan-out request answered in full
    expect([...answers.keys()]).toEqual([ANSWERED]);
    expect(fanout.deferred).toBeGreaterThanOrEqual(DEFERRED_AT_LEAST);
    expect(fanout.overflowed).toBe(0);
    // a neighbour with two requests running at a time is never deferred
    expect(server.runtime.share.account('neighbour').deferred).toBe(0);
    expect(server.runtime.share.waitingEntries).toBe(0);

    const metrics = (await new Metrics(server.runtime, { defaultMetrics: false }).render()).body;
    const deferred = Number(/^cinder_serving_share_deferred_total\{worker="fanout"\} (\d+)$/m.exec(metrics)?.[1]);
    expect(deferred).toBe(fanout.deferred);
    expect(metrics).not.toMatch(/^cinder_serving_share_deferred_total\{worker="neighbour"\}/m);
  }, 180_000);
});
