// A service RPC whose result is refused in the copy out of the callee (past its copyLimit) ends that
// invocation on the host, but the guest is never told: timers and waitUntil work it started would
// run on, charged to nobody. The callee's isolate is retired: it takes no more work and ends once
// the rest is done, so the next call meets a fresh isolate; and nothing it left behind reaches out.
import { afterAll, beforeAll, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { registerServiceBindings } from '../../bindings/service/host.js';

let server: TestServer;
let target: http.Server;
let hits = 0;

beforeAll(async () => {
  target = http.createServer((req, res) => {
    hits++;
    res.end('hit');
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(target.address() as AddressInfo).port}/`;
  server = await startTestServer(
    {
      api: {
        code: `
import { WorkerEntrypoint } from 'cloudflare:workers';
let calls = 0;
export default class Api extends WorkerEntrypoint {
  fetch() { return new Response('api'); }
  big() {
    calls++;
    this.ctx.waitUntil(new Promise(() => {}));
    setInterval(() => { fetch(${JSON.stringify(url)}).catch(() => {}); }, 5);
    return Array(200).fill('b'.repeat(1024 * 1024));
  }
  count() { return ++calls; }
}`,
        limits: { cpuMs: 1000 },
      },
      caller: {
        code: `export default { async fetch(request, env) {
  let first;
  try { first = 'answered ' + (await env.API.big()).length; } catch (e) { first = e.name; }
  return new Response(first + ' ' + await env.API.count());
} }`,
        bindings: { API: { type: 'service', service: 'api' } },
        limits: { cpuMs: 1000 },
      },
    },
    { allowPrivateFetch: true },
  );
  registerServiceBindings(server.runtime);
});

afterAll(async () => {
  await server?.close();
  await new Promise<void>((resolve) => target.close(() => resolve()));
});

it('retires the callee isolate after a refused RPC result: the next call meets a fresh isolate and the leftover interval never reaches out', async () => {
  const res = await server.request('caller');
  expect(res.status, res.text).toBe(200);
  // the refusal reached the caller, and count() ran in a new isolate (its module state fresh)
  expect(res.text).toBe('RangeError 1');
  const seen = hits;
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(hits).toBe(seen);
});
