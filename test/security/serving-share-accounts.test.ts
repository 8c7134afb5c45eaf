// Issue 22: an account that spreads a service-binding fan-out over many of its workers (each call
// to the next worker round the ring) gets no share per worker: its workers' estimates are summed
// per account (src/runtime/serving-share.ts), and while the account is over its share of the
// saturated serving thread its workers' entries are deferred, though no one of them is over its
// own share. Over a real server: a neighbour worker of another account gets every request
// answered, none of its entries deferred; the attacker's entries held back by its account's share
// are counted (runtime and /metrics), and deferral fails none of its requests. The thread is
// treated as always saturated (saturation 0), so what is asserted does not depend on how fast this
// machine is; counts only, no timings.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Metrics } from '../../src/observability/metrics.js';
import { registerServiceBindings } from '../../bindings/service/host.js';

/** Workers of the attacking account, each calling the others round the ring. */
const RING = 12;
const ATTACKER = 'a'.repeat(32);
const NEIGHBOUR = 'b'.repeat(32);

const FAN_OUT = `export default { async fetch(request, env) {
  const url = new URL(request.url);
  const level = Number(url.searchParams.get('level') || '0');
  const self = Number(url.searchParams.get('self') || '0');
  if (level >= 3) return new Response('leaf');
  const calls = [];
  for (let i = 0; i < 30; i++) {
    const next = (self + 1 + i) % ${RING};
    calls.push(env['W' + next].fetch('https://fan/?level=' + (level + 1) + '&self=' + next).then((r) => r.text(), (e) => 'E:' + e.message));
  }
  const results = await Promise.all(calls);
  // calls past the request's invocation cap are refused (as on Workers); any other failure, here
  // or below, is counted and answered
  let other = 0;
  for (const text of results) {
    if (text.startsWith('E:')) other += text.includes('Too many worker invocations') ? 0 : 1;
    else other += Number(/(\\d+) other failures/.exec(text)?.[1] ?? 0);
  }
  return new Response(results.length + ' calls, ' + other + ' other failures');
} };`;
const ANSWERED = '200 30 calls, 0 other failures';

/** Neighbour requests per connection: at least this many, and until the attacker's account has
 *  had DEFERRED_AT_LEAST entries deferred (at most NEIGHBOUR_MAX_REQUESTS). */
const NEIGHBOUR_REQUESTS = 300;
const DEFERRED_AT_LEAST = 30;
const NEIGHBOUR_MAX_REQUESTS = 20_000;
const NEIGHBOUR_CONNECTIONS = 2;
const ATTACKER_CONNECTIONS = 3;

const ring = Array.from({ length: RING }, (_, i) => `fan${i}`);

describe("an account's fan-out spread over many workers waits for its account's share; a neighbour in another account does not", () => {
  let server: TestServer;

  beforeAll(async () => {
    const bindings = Object.fromEntries(ring.map((name, i) => [`W${i}`, { type: 'service' as const, service: name }]));
    const workers: Parameters<typeof startTestServer>[0] = {
      neighbour: { code: `export default { fetch() { return new Response('hello') } }`, account: NEIGHBOUR },
    };
    // Limits far above what a fan-out request uses, so that only the share decides what happens
    // on a slow, loaded machine (a deferred call waits on the host, not in the guest).
    for (const name of ring) workers[name] = { code: FAN_OUT, bindings, account: ATTACKER, limits: { cpuMs: 5_000, wallMs: 120_000, subrequests: 1000 } };
    server = await startTestServer(workers, { runtime: { servingShare: { saturation: 0 } } });
    registerServiceBindings(server.runtime);
    expect((await server.request('fan0')).text).toBe('30 calls, 0 other failures');
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  const shares = () => ring.map((name) => server.runtime.share.account(name, ATTACKER));
  const sum = (pick: (s: ReturnType<typeof shares>[number]) => number) => shares().reduce((n, s) => n + pick(s), 0);

  it("defers the attacker's entries by its account's share; every request of both is answered", async () => {
    const neighbourStatuses = new Map<string, number>();
    let neighbourDone = false;
    let sent = 0;
    const neighbour = Promise.all(
      Array.from({ length: NEIGHBOUR_CONNECTIONS }, async () => {
        for (let i = 0; i < NEIGHBOUR_REQUESTS || (sum((s) => s.deferredByAccount) < DEFERRED_AT_LEAST && i < NEIGHBOUR_MAX_REQUESTS); i++) {
          sent++;
          const res = await server.request('neighbour');
          const key = `${res.status} ${res.text}`;
          neighbourStatuses.set(key, (neighbourStatuses.get(key) ?? 0) + 1);
        }
      }),
    ).finally(() => (neighbourDone = true));
    const answers = new Map<string, number>();
    let attacks = 0;
    const attacker = Promise.all(
      Array.from({ length: ATTACKER_CONNECTIONS }, async () => {
        while (!neighbourDone || attacks < 30) {
          const self = attacks++ % RING;
          const res = await server.request(`fan${self}`, `/?self=${self}`);
          const key = `${res.status} ${res.text}`;
          answers.set(key, (answers.get(key) ?? 0) + 1);
        }
      }),
    );
    await neighbour;
    await attacker;

    expect(Object.fromEntries(neighbourStatuses)).toEqual({ '200 hello': sent });
    // deferral never fails a request: every fan-out request answered in full
    expect([...answers.keys()]).toEqual([ANSWERED]);
    // held back by the account's share while within their own (the account level at work)
    expect(sum((s) => s.deferredByAccount)).toBeGreaterThanOrEqual(DEFERRED_AT_LEAST);
    expect(sum((s) => s.overflowed)).toBe(0);
    const neighbourShare = server.runtime.share.account('neighbour', NEIGHBOUR);
    expect(neighbourShare.deferred).toBe(0);
    expect(server.runtime.share.waitingEntries).toBe(0);

    const metrics = (await new Metrics(server.runtime, { defaultMetrics: false }).render()).body;
    let counted = 0;
    for (const name of ring) counted += Number(new RegExp(`^cinder_serving_share_deferred_total\\{worker="${name}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
    expect(counted).toBe(sum((s) => s.deferred));
    let byAccount = 0;
    for (const name of ring) byAccount += Number(new RegExp(`^cinder_serving_share_deferred_by_account_total\\{worker="${name}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
    expect(byAccount).toBe(sum((s) => s.deferredByAccount));
    expect(metrics).not.toMatch(/^cinder_serving_share_deferred_total\{worker="neighbour"\}/m);
  }, 240_000);
});
