// Live Durable Objects (each an isolate) are bounded per serving process, and one account may hold
// only part of them: an account that keeps its objects busy is refused past its own cap, so a
// neighbour account still gets objects; and when the process is full, the idle object evicted to
// make room is one of the account holding the most, not the neighbour's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCinder, type TestCinder } from '../control/helpers.js';
import { makeTenant, type Tenant } from './tenants.js';

// Each object counts the events it saw in memory: a count that goes on shows the same live
// instance answered (an evicted object starts again from 1).
const code = `
export class Slot {
  seen = 0;
  async fetch(request) {
    const ms = Number(new URL(request.url).searchParams.get('ms') ?? 0);
    if (ms) await new Promise((r) => setTimeout(r, ms));
    return new Response(String(++this.seen));
  }
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try { return await env.SLOT.getByName(url.searchParams.get('name')).fetch(request); }
    catch (e) { return new Response(e.message, { status: 503 }); }
  },
};`;
const metadata = { bindings: [{ type: 'durable_object_namespace', name: 'SLOT', class_name: 'Slot' }], migrations: { new_tag: 'v1', new_classes: ['Slot'] } };

let cinder: TestCinder;
let good: Tenant;
let evil: Tenant;

beforeAll(async () => {
  // Three live objects in the process, two at most per account.
  cinder = await startCinder({ durableObjects: { maxLive: 3, maxLivePerAccount: 2 } });
  good = await makeTenant(cinder, 'good');
  evil = await makeTenant(cinder, 'evil');
  for (const [tenant, worker] of [[good, 'goodslots'], [evil, 'evilslots']] as const) {
    const res = await tenant.deploy(worker, code, metadata);
    expect(res.status, res.text).toBe(201);
  }
});
afterAll(() => cinder?.close({ cleanup: true }));

describe('live Durable Objects per account', () => {
  it('an account keeping its objects busy is refused past its own cap; the neighbour still gets objects', async () => {
    // evil holds two busy objects (each waits 4 s) and asks for a third.
    const busy = [cinder.get('evilslots.example.com', '/?name=a&ms=4000'), cinder.get('evilslots.example.com', '/?name=b&ms=4000')];
    await new Promise((r) => setTimeout(r, 1000));
    const third = await cinder.get('evilslots.example.com', '/?name=c');
    expect(third.status).toBe(503);
    expect(third.text).toMatch(/this account holds its maximum of 2 live Durable Objects on this server, all busy; try again shortly/);
    // The neighbour's object is made: the third slot was left for it.
    const mine = await cinder.get('goodslots.example.com', '/?name=x');
    expect(mine.status, mine.text).toBe(200);
    expect(mine.text).toBe('1');
    expect((await Promise.all(busy)).map((r) => r.text)).toEqual(['1', '1']);
    expect(cinder.server.runtime.objects().liveCount).toBe(3);
  });

  it('a full process evicts an idle object of the account holding the most, not the neighbour\'s', async () => {
    // Full (evil's a and b, idle now; good's x): good's second object takes one of evil's slots.
    const second = await cinder.get('goodslots.example.com', '/?name=y');
    expect(second.status, second.text).toBe(200);
    expect(cinder.server.runtime.objects().liveCount).toBe(3);
    // x is the same live instance: its count goes on.
    expect((await cinder.get('goodslots.example.com', '/?name=x')).text).toBe('2');
    // evil's own next object makes room among its own (it holds one, under its cap, but the
    // process is full: the holder of the most is now good, with two idle).
    const evilNext = await cinder.get('evilslots.example.com', '/?name=d');
    expect(evilNext.status, evilNext.text).toBe(200);
    expect(cinder.server.runtime.objects().liveCount).toBe(3);
  });
});
