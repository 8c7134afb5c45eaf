// Requests that arrive together enter their isolate concurrently, asynchronously on isolated-vm's
// threads, bodyless ones in one crossing per event-loop turn (src/runtime/entry-policy.ts
// FetchBatch): every answer must
// reach its own request, with its own logs and metering; handlers that wait on the host answer
// later; a spinning one is cut at the CPU limit; guest code that tampers with JSON cannot garble
// the answers.
import { BURN_SOURCE, burnIterations } from '../helpers/burn.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installKV, KVService, MemoryBackend } from '../../bindings/kv/index.js';
import type { InvocationRecord } from '../../src/runtime/invocation.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// The guest clock stands still while it runs: a handler burns CPU by a measured loop.
const ECHO = `${BURN_SOURCE}
const ITERATIONS_PER_MS = ${burnIterations(10) / 10};
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    console.log('path ' + url.pathname);
    if (url.pathname.startsWith('/timer')) await new Promise((resolve) => setTimeout(resolve, 5));
    if (url.pathname.startsWith('/kv')) return new Response('kv:' + (await env.KV.get('k')) + ':' + url.pathname);
    if (url.pathname === '/spin') { await null; while (true) {} }
    if (url.pathname.startsWith('/throw')) throw new Error('thrown for ' + url.pathname);
    if (url.pathname.startsWith('/burn')) burnLoop(Number(url.searchParams.get('ms')) * ITERATIONS_PER_MS);
    if (url.pathname === '/bytes') return new Response(new TextEncoder().encode('bytes:' + url.pathname));
    return new Response('echo:' + url.pathname + ':' + request.headers.get('x-n'), { headers: { 'x-n': request.headers.get('x-n') } });
  },
};`;

const TAMPER = `
Object.prototype.toJSON = function () { return 'tampered'; };
Array.prototype.toJSON = function () { return 'tampered'; };
JSON.stringify = () => '{"result":{"status":299,"headers":[]}}';
JSON.parse = () => ({ tampered: true });
export default { fetch(request) { return new Response('clean:' + new URL(request.url).pathname, { status: 201 }); } };`;

function request(path: string, n = 0) {
  return { method: 'GET', url: `http://echo.test${path}`, headers: [['host', 'echo.test'], ['x-n', String(n)]] as [string, string][], body: null };
}

async function text(response: { body: unknown }): Promise<string> {
  const body = response.body;
  if (typeof body === 'string') return body;
  return body ? new TextDecoder().decode(body as ArrayBuffer) : '';
}

describe('concurrent entries of requests', () => {
  let server: TestServer;
  let kv: KVService;
  const records: InvocationRecord[] = [];

  beforeAll(async () => {
    server = await startTestServer({});
    kv = new KVService({ backend: new MemoryBackend(), sweepIntervalMs: 0 });
    installKV(server.runtime, kv);
    server.runtime.onInvocation((record) => records.push(record));
    server.deploy('echo', { code: ECHO, bindings: { KV: { type: 'kv_namespace', namespace_id: 'batching' } } });
    server.deploy('tamper', TAMPER);
    await server.runtime.fetch('echo', request('/warm'));
    await kv.put('batching', 'k', 'stored');
  });
  afterAll(async () => {
    await server.close();
    await kv.close();
  });

  const instance = (name: string) => server.runtime.instancesOf(name)[0];

  it('answers every request that arrived together with its own response, all entered off this thread', async () => {
    const before = { ...instance('echo').entries };
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => server.runtime.fetch('echo', request(`/r${i}`, i))));
    for (let i = 0; i < responses.length; i++) {
      expect(responses[i].status).toBe(200);
      expect(await text(responses[i])).toBe(`echo:/r${i}:${i}`);
      expect(responses[i].headers).toContainEqual(['x-n', String(i)]);
    }
    expect(instance('echo').entries.async - before.async).toBe(40);
    // They arrived in one turn of the event loop: they crossed together, 16 at most at a time.
    expect(instance('echo').entries.batches - before.batches).toBe(3);
    expect(instance('echo').entries.batched - before.batched).toBe(40);
  });

  it('answers concurrent requests over real sockets, each with its own response', async () => {
    const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => server.request('echo', `/http${i}`, { headers: { 'x-n': String(i) } })));
    responses.forEach((response, i) => {
      expect(response.status).toBe(200);
      expect(response.text).toBe(`echo:/http${i}:${i}`);
      expect(response.headers['x-n']).toBe(String(i));
    });
  });

  it('lets handlers that wait on the host (timers, KV) answer later, mixed with immediate ones', async () => {
    const paths = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? `/timer${i}` : i % 3 === 1 ? `/kv${i}` : `/now${i}`));
    const before = { ...instance('echo').entries };
    const responses = await Promise.all(paths.map((path, i) => server.runtime.fetch('echo', request(path, i))));
    for (let i = 0; i < paths.length; i++) {
      expect(responses[i].status).toBe(200);
      expect(await text(responses[i])).toBe(paths[i].startsWith('/kv') ? `kv:stored:${paths[i]}` : `echo:${paths[i]}:${i}`);
    }
    // Two batches (16 + 14): the immediate ones answered in them, the waiting ones each on their
    // own after them.
    expect(instance('echo').entries.batches - before.batches).toBe(2);
    expect(instance('echo').entries.batched - before.batched).toBe(30);
  });

  it('answers a batch whose requests end in exceptions, each with its own, beside ones that succeed', async () => {
    const responses = await Promise.all(Array.from({ length: 12 }, (_, i) => server.runtime.fetch('echo', request(i % 4 === 0 ? `/throw${i}` : `/ok${i}`, i))));
    for (let i = 0; i < responses.length; i++) {
      if (i % 4 === 0) {
        expect(responses[i].status).toBe(500);
        expect(responses[i].exception?.message).toBe(`thrown for /throw${i}`);
      } else expect(await text(responses[i])).toBe(`echo:/ok${i}:${i}`);
    }
  });

  it('returns binary bodies of concurrent requests intact', async () => {
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => server.runtime.fetch('echo', request(i % 2 ? '/bytes' : `/s${i}`, i))));
    for (let i = 0; i < responses.length; i++) expect(await text(responses[i])).toBe(i % 2 ? 'bytes:/bytes' : `echo:/s${i}:${i}`);
  });

  it('keeps each console line with its own request, and meters each invocation', async () => {
    records.length = 0;
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => server.runtime.fetch('echo', request(`/log${i}`, i))));
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (let i = 0; i < responses.length; i++) {
      const line = server.logs.find((entry) => entry.console === 'log' && entry.msg === `path /log${i}`);
      expect(line, `console line of /log${i}`).toBeDefined();
      expect(line!.requestId).toBe(responses[i].requestId);
    }
    const mine = records.filter((record) => responses.some((response) => response.requestId === record.requestId));
    expect(mine).toHaveLength(20);
    for (const record of mine) {
      expect(record.outcome).toBe('ok');
      expect(record.cpuMs).toBeGreaterThan(0);
      expect(record.cpuMs).toBeLessThan(50);
    }
  });

  it('fails requests waiting for their batch with the limit when their isolate goes before it crosses; the worker serves again after', async () => {
    // runtime.fetch reaches the batch synchronously: all five wait for this turn's crossing when
    // the isolate is ended (as a sibling's breach would), so the crossing finds it gone.
    const pending = Array.from({ length: 5 }, (_, i) => server.runtime.fetch('echo', request(`/gone${i}`, i)));
    instance('echo').breach('memory');
    const responses = await Promise.all(pending);
    for (const response of responses) {
      expect(response.status).toBe(503);
      expect(response.limit?.limit).toBe('memory');
    }
    const again = await server.runtime.fetch('echo', request('/again', 1));
    expect(await text(again)).toBe('echo:/again:1');
  });

  it('cuts a handler that spins among concurrent ones at the CPU limit; the worker serves again after', async () => {
    const paths = [...Array.from({ length: 8 }, (_, i) => `/b${i}`), '/spin'];
    const spinning = instance('echo');
    const responses = await Promise.all(paths.map((path, i) => server.runtime.fetch('echo', request(path, i))));
    expect(spinning.alive).toBe(false);
    const spun = responses[paths.length - 1];
    expect(spun.status).toBe(503);
    expect(spun.limit?.message).toContain('exceeded CPU time limit');
    // Concurrent requests in one isolate share its fate: each is either answered or ended by the
    // same limit, never left hanging.
    for (const response of responses.slice(0, -1)) expect([200, 503]).toContain(response.status);
    const after = await server.runtime.fetch('echo', request('/after', 1));
    expect(await text(after)).toBe('echo:/after:1');
  });

  it('does not cut a handler that stays under the CPU limit for sharing its isolate with others', async () => {
    // 30 ms, under the 50 ms limit with room for a loaded machine's slower loop, plus 15 others of
    // up to 2 ms: over 50 ms together.
    const paths = ['/burn?ms=30', ...Array.from({ length: 15 }, () => '/burn?ms=2')];
    const responses = await Promise.all(paths.map((path, i) => server.runtime.fetch('echo', request(path, i))));
    for (const response of responses) expect(response.status, response.limit?.message).toBe(200);
  });

  it('answers correctly when guest code replaced JSON and gave prototypes a toJSON', async () => {
    await server.runtime.fetch('tamper', request('/first'));
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => server.runtime.fetch('tamper', request(`/t${i}`, i))));
    for (let i = 0; i < responses.length; i++) {
      expect(responses[i].status).toBe(201);
      expect(await text(responses[i])).toBe(`clean:/t${i}`);
    }
  });
});
