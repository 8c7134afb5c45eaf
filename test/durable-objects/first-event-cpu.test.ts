// A Durable Object's first event is charged for the guest's own code only (issue 23): the storage
// process's start-up and the opening of the object's file belong to the object's start-up, not to
// the CPU limit of its first event. Through a real `cinder serve` with fresh storage processes.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';

let cinder: TestCinder;

const COUNTER = `
export class Counter {
  constructor(ctx) {
    this.ctx = ctx;
    if (ctx.id.name === 'spin-constructor') for (;;) {}
  }
  async fetch(request) {
    if (new URL(request.url).pathname === '/spin') for (;;) {}
    const value = ((await this.ctx.storage.get('count')) ?? 0) + 1;
    await this.ctx.storage.put('count', value);
    return new Response(String(value));
  }
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try { return await env.COUNTER.getByName(url.searchParams.get('name')).fetch('https://do' + url.pathname); }
    catch (e) { return new Response('caught: ' + e.message, { status: 502 }); }
  },
};`;

// Measured on the 2-core dev machine at load 2-3 (bench/do-first-event.mjs, bench/README.md "issue
// 23, round 7"): after the fix a first event of this object (construct, get, a put that creates
// the key-value table) is charged ~1.7 ms (p90 2.5, max 3.9), the first object of a fresh server
// ~2.3 ms (p90 5.7, max 8.9). Before it, that first object was charged the storage process's
// warm-up as well, ~12 ms (max 15), and a 3x slower host took it past 30 ms; every first event paid
// the open of its file (~1 ms, now metered as host work: the check on hostWorkMs below is what
// fails on main on any machine). 30 ms is 10x the first event's own cost here, over 3x its worst.
const CPU_MS = 30;

beforeAll(async () => {
  cinder = await startCinder();
  const res = await cinder.admin('PUT', '/workers/app', {
    body: multipart(
      { main_module: 'index.js', bindings: [{ type: 'durable_object_namespace', name: 'COUNTER', class_name: 'Counter' }], migrations: { new_tag: 'v1', new_classes: ['Counter'] }, limits: { cpu_ms: CPU_MS } },
      { 'index.js': COUNTER },
    ),
  });
  expect(res.status, res.text).toBe(201);
});

afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

it('answers the first event of fresh objects under a small CPU limit, and meters opening their storage as host work', async () => {
  const records: { kind: string; outcome: string; hostWorkMs?: number; trigger?: unknown }[] = [];
  cinder.server.runtime.onInvocation((record) => records.push(record));
  // Objects spread over both storage processes (sharded by key): each process's first object too.
  for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) {
    const res = await cinder.get('app.example.com', `/inc?name=${name}`);
    expect(res.text).toBe('1');
    expect(res.status).toBe(200);
  }
  const objectEvents = records.filter((r) => r.kind === 'durable-object');
  expect(objectEvents.map((r) => r.outcome)).toEqual(Array(6).fill('ok'));
  // The open's CPU is not lost: each first event's record carries it, outside the CPU limit.
  expect(objectEvents.every((r) => (r.hostWorkMs ?? 0) > 0)).toBe(true);
});

it('still ends a first event that spins, in the handler or the constructor, at the CPU limit', async () => {
  const spun = await cinder.get('app.example.com', '/spin?name=spinner');
  expect(spun.status).toBe(502);
  expect(spun.text).toMatch(/^caught: env\.COUNTER: Durable Object Counter .*CPU/);
  const constructed = await cinder.get('app.example.com', '/inc?name=spin-constructor');
  expect(constructed.status).toBe(502);
  expect(constructed.text).toMatch(/^caught: env\.COUNTER: Durable Object Counter .*CPU/);
  // and the object next to them is untouched
  expect((await cinder.get('app.example.com', '/inc?name=a')).text).toBe('2');
});
