// Issue 22: a worker that breaches its CPU limit (here a handler spinning forever: every request
// breaches, and each breach recycles its isolate) is moved to the background class of isolate
// threads (src/runtime/background-class.ts; isolated-vm patch 14): its next isolates run niced
// below every other tenant's until it has been calm. Over a real server, a neighbour requested
// beside it gets every request answered; the move is counted in /metrics
// (cinder_background_workers, cinder_background_moves_total) and logged once; the neighbour is
// never moved. With the class off (CINDER_BACKGROUND_THREAD_NICE=0), nobody is. Counts only.
import { afterAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Metrics } from '../../src/observability/metrics.js';

const SPIN = `export default { fetch() { for (;;) {} } }`;
const NEIGHBOUR = `export default { fetch() { return new Response('hello') } }`;
const ATTACKER_REQUESTS = 6;

const servers: TestServer[] = [];
afterAll(async () => {
  for (const server of servers) await server.close();
});

/** The attacker's requests one after another, the neighbour's from two connections meanwhile;
 *  both sides' answers by status and body. */
async function attackBeside(server: TestServer): Promise<{ attacker: Map<string, number>; neighbour: Map<string, number> }> {
  const attacker = new Map<string, number>();
  const neighbour = new Map<string, number>();
  let attacking = true;
  const neighbours = Array.from({ length: 2 }, async () => {
    // at least a few each, then for as long as the attack lasts
    for (let i = 0; attacking || i < 5; i++) {
      const res = await server.request('neighbour');
      const key = `${res.status} ${res.text}`;
      neighbour.set(key, (neighbour.get(key) ?? 0) + 1);
    }
  });
  for (let i = 0; i < ATTACKER_REQUESTS; i++) {
    const res = await server.request('spin');
    const key = `${res.status} ${/CPU time limit/.test(res.text) ? 'cpu limit' : res.text}`;
    attacker.set(key, (attacker.get(key) ?? 0) + 1);
  }
  attacking = false;
  await Promise.all(neighbours);
  return { attacker, neighbour };
}

async function metrics(server: TestServer): Promise<string> {
  return (await new Metrics(server.runtime, { defaultMetrics: false }).render()).body;
}

describe('a worker that breaches its CPU limit runs in the background class of isolate threads', () => {
  it('moves the attacker once, keeps it there while it keeps breaching, and leaves the neighbour alone', async () => {
    // Calm for ten minutes: on a slow machine the attack's breaches are far apart, and it stays moved.
    const server = await startTestServer({ spin: SPIN, neighbour: NEIGHBOUR }, { runtime: { backgroundClass: { enabled: true, calmMs: 600_000 } } });
    servers.push(server);
    expect((await server.request('neighbour')).text).toBe('hello');
    expect(server.runtime.background.has('spin')).toBe(false);

    const { attacker, neighbour } = await attackBeside(server);
    expect([...attacker]).toEqual([['503 cpu limit', ATTACKER_REQUESTS]]);
    expect([...neighbour.keys()]).toEqual(['200 hello']);

    expect(server.runtime.background.has('spin')).toBe(true);
    expect(server.runtime.background.has('neighbour')).toBe(false);
    const text = await metrics(server);
    expect(text).toMatch(/^cinder_background_workers 1$/m);
    expect(text).toMatch(/^cinder_background_moves_total\{worker="spin"\} 1$/m);
    expect(text).not.toMatch(/^cinder_background_moves_total\{worker="neighbour"\}/m);
    const moved = server.logs.filter((line) => String(line.msg).includes('runs in the background class'));
    expect(moved.map((line) => line.worker)).toEqual(['spin']);
    expect(String(moved[0].msg)).toBe('worker spin runs in the background class of isolate threads until it has not breached its CPU limit for 600 s');

    // Each breach ended the attacker's isolate. Its next one (a new version that answers, as a
    // tenant might deploy to get out) still runs in the background class, and is served; the
    // neighbour's is in the normal class.
    // It is built for it in that class too, not taken from the pool (whose refills would run at
    // everyone else's priority).
    const taken = server.runtime.poolStats().taken;
    server.deploy('spin', `export default { fetch() { return new Response('calm now') } }`);
    expect((await server.request('spin')).text).toBe('calm now');
    expect(server.runtime.poolStats().taken).toBe(taken);
    const spinIsolates = server.runtime.instancesOf('spin');
    expect(spinIsolates.length).toBeGreaterThan(0);
    expect(spinIsolates.map((instance) => instance.inBackgroundClass)).toEqual(spinIsolates.map(() => true));
    expect(server.runtime.instancesOf('neighbour').map((instance) => instance.inBackgroundClass)).toEqual([false]);

    // Removing the worker forgets it.
    server.runtime.remove('spin');
    expect(await metrics(server)).toMatch(/^cinder_background_workers 0$/m);
  }, 120_000);

  it('moves nobody with the class off', async () => {
    const server = await startTestServer({ spin: SPIN, neighbour: NEIGHBOUR }, { runtime: { backgroundClass: { enabled: false, calmMs: 600_000 } } });
    servers.push(server);
    const { attacker, neighbour } = await attackBeside(server);
    expect([...attacker]).toEqual([['503 cpu limit', ATTACKER_REQUESTS]]);
    expect([...neighbour.keys()]).toEqual(['200 hello']);
    expect(server.runtime.background.has('spin')).toBe(false);
    const text = await metrics(server);
    expect(text).toMatch(/^cinder_background_workers 0$/m);
    expect(text).not.toMatch(/^cinder_background_moves_total\{/m);
    expect(server.runtime.instancesOf('spin').some((instance) => instance.inBackgroundClass)).toBe(false);
  }, 120_000);
});
