// A Durable Object's RPC result is copied out of the object's isolate by isolated-vm's serializer,
// capped at the isolate's copyLimit (isolated-vm patch 13). A result past it (one 1 MiB string
// referenced 200 times: 1 MiB of heap, 200 MiB to copy) is refused inside the copy; the caller is
// told which method and why, the refused call is logged and metered like any other event (it was
// once left in flight, never recorded), and the object goes on answering.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';

const LIMIT = 128 * 1024 * 1024;

const SOURCE = `
import { DurableObject } from 'cloudflare:workers';
export class Big extends DurableObject {
  big() { return Array(200).fill('b'.repeat(1024 * 1024)); }
  small() { return 'ok'; }
}
export default {
  async fetch(request, env) {
    const stub = env.BIG.getByName('one');
    let first;
    try { first = 'answered ' + (await stub.big()).length; } catch (e) { first = e.name + ': ' + e.message; }
    return new Response(first + '\\n' + await stub.small());
  },
};`;

let cinder: TestCinder;

beforeAll(async () => {
  cinder = await startCinder();
  // CPU and wall limits far above what the copy takes on a slow machine: the test is about bytes.
  const res = await cinder.admin('PUT', '/workers/app', {
    body: multipart(
      { main_module: 'index.js', bindings: [{ type: 'durable_object_namespace', name: 'BIG', class_name: 'Big' }], migrations: { new_tag: 'v1', new_classes: ['Big'] }, limits: { cpu_ms: 1000 } },
      { 'index.js': SOURCE },
    ),
  });
  expect(res.status, res.text).toBe(201);
});

afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

it('refuses a Durable Object RPC result past the copy limit, naming the method, and records the refused call', async () => {
  const records: { kind: string; outcome: string; trigger?: { url?: string }; exception?: { message: string } }[] = [];
  cinder.server.runtime.onInvocation((record) => records.push(record as (typeof records)[number]));
  const before = process.memoryUsage().rss;
  const res = await cinder.get('app.example.com', '/');
  expect(res.status, res.text).toBe(200);
  const message = `big: the RPC result would be more than ${LIMIT} bytes when copied out of the worker (a string counts each time it is referenced); that is the limit for one call`;
  expect(res.text).toBe(`RangeError: ${message}\nok`);
  expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  const calls = records.filter((r) => r.kind === 'durable-object').map((r) => [r.trigger?.url, r.outcome, r.exception?.message]);
  expect(calls).toEqual([
    ['durable-object://Big/big', 'exception', message],
    ['durable-object://Big/small', 'ok', undefined],
  ]);
});
