// Light requests that arrive together enter their isolate in one batch (src/runtime/fetch-batch.ts):
// every answer must still reach its own request, with its own logs and metering; handlers that
// wait on the host answer later; limits still cut exactly as without batching; guest code that
// tampers with JSON cannot garble the answers.
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

describe('batched entry of light requests', () => {
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

  /** Requests start batching once two or more arrived in one turn of the event loop: show the
   *  worker such a turn, then let it end. */
  async function primeBatching(name: string): Promise<void> {
    await Promise.all([server.runtime.fetch(name, request('/prime')), server.runtime.fetch(name, request('/prime'))]);
    await new Promise((resolve) => setImmediate(resolve));
  }

  it('answers every request of a batch with its own response', async () => {
    await primeBatching('echo');
    const before = { ...instance('echo').entries };
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => server.runtime.fetch('echo', request(`/r${i}`, i))));
    for (let i = 0; i < responses.length; i++) {
      expect(responses[i].status).toBe(200);
      expect(await text(responses[i])).toBe(`echo:/r${i}:${i}`);
      expect(responses[i].headers).toContainEqual(['x-n', String(i)]);
    }
    const after = instance('echo').entries;
    // At most 16 to a batch.
    expect(after.batched - before.batched).toBe(40);
    expect(after.batches - before.batches).toBe(3);
    expect(after.async).toBe(before.async);
  });

  it('sends a request that arrives on its own straight in, without waiting for a batch', async () => {
    await server.runtime.fetch('echo', request('/one'));
    await new Promise((resolve) => setImmediate(resolve));
    const before = { ...instance('echo').entries };
    for (let i = 0; i < 5; i++) {
      expect(await text(await server.runtime.fetch('echo', request(`/seq${i}`, i)))).toBe(`echo:/seq${i}:${i}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(instance('echo').entries.sync - before.sync).toBe(5);
    expect(instance('echo').entries.batches).toBe(before.batches);
  });

  it('answers concurrent requests over real sockets, each with its own response', async () => {
    // Whether these batch depends on how they arrive; the answers must be right either way.
    const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => server.request('echo', `/http${i}`, { headers: { 'x-n': String(i) } })));
    responses.forEach((response, i) => {
      expect(response.status).toBe(200);
      expect(response.text).toBe(`echo:/http${i}:${i}`);
      expect(response.headers['x-n']).toBe(String(i));
    });
  });

  it('lets handlers that wait on the host (timers, KV) answer after their batch, mixed with immediate ones', async () => {
    const paths = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? `/timer${i}` : i % 3 === 1 ? `/kv${i}` : `/now${i}`));
    await primeBatching('echo');
    const batchedBefore = instance('echo').entries.batched;
    const responses = await Promise.all(paths.map((path, i) => server.runtime.fetch('echo', request(path, i))));
    for (let i = 0; i < paths.length; i++) {
      expect(responses[i].status).toBe(200);
      expect(await text(responses[i])).toBe(paths[i].startsWith('/kv') ? `kv:stored:${paths[i]}` : `echo:${paths[i]}:${i}`);
    }
    expect(instance('echo').entries.batched - batchedBefore).toBe(30);
    // Once they are done, light requests batch again.
    const before = instance('echo').entries.batched;
    await Promise.all(Array.from({ length: 10 }, (_, i) => server.runtime.fetch('echo', request(`/again${i}`, i))));
    expect(instance('echo').entries.batched).toBeGreaterThan(before);
  });

  it('returns binary bodies of batched requests intact', async () => {
    await primeBatching('echo');
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => server.runtime.fetch('echo', request(i % 2 ? '/bytes' : `/s${i}`, i))));
    for (let i = 0; i < responses.length; i++) expect(await text(responses[i])).toBe(i % 2 ? 'bytes:/bytes' : `echo:/s${i}:${i}`);
  });

  it('keeps each console line with its own request, and meters each invocation', async () => {
    await primeBatching('echo');
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

  it('cuts a handler that spins inside a batch at the CPU limit; the worker serves again after', async () => {
    const paths = [...Array.from({ length: 8 }, (_, i) => `/b${i}`), '/spin'];
    await primeBatching('echo');
    const spinning = instance('echo');
    const batchesBefore = spinning.entries.batches;
    const responses = await Promise.all(paths.map((path, i) => server.runtime.fetch('echo', request(path, i))));
    expect(spinning.entries.batches).toBe(batchesBefore + 1);
    expect(spinning.alive).toBe(false);
    const spun = responses[paths.length - 1];
    expect(spun.status).toBe(503);
    expect(spun.limit?.message).toContain('exceeded CPU time limit');
    // Requests in the same batch share the isolate's fate (as concurrent requests in one isolate
    // do): each is either answered or ended by the same limit, never left hanging.
    for (const response of responses.slice(0, -1)) expect([200, 503]).toContain(response.status);
    const after = await server.runtime.fetch('echo', request('/after', 1));
    expect(await text(after)).toBe('echo:/after:1');
  });

  it('does not cut a handler that stays under the CPU limit for sharing its batch with others', async () => {
    await primeBatching('echo');
    const batching = instance('echo');
    const before = batching.entries.batches;
    // 30 ms, under the 50 ms limit, plus 15 others of 1.5 ms: over 50 ms together. (The loop is
    // measured at its fastest and costs more on a busy machine: the one handler keeps a margin.)
    const paths = ['/burn?ms=30', ...Array.from({ length: 15 }, () => '/burn?ms=1.5')];
    const responses = await Promise.all(paths.map((path, i) => server.runtime.fetch('echo', request(path, i))));
    expect(batching.entries.batches).toBe(before + 1);
    for (const response of responses) expect(response.status, response.limit?.message).toBe(200);
  });

  it('answers correctly when guest code replaced JSON and gave prototypes a toJSON', async () => {
    await server.runtime.fetch('tamper', request('/first'));
    await primeBatching('tamper');
    const before = instance('tamper').entries.batched;
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => server.runtime.fetch('tamper', request(`/t${i}`, i))));
    for (let i = 0; i < responses.length; i++) {
      expect(responses[i].status).toBe(201);
      expect(await text(responses[i])).toBe(`clean:/t${i}`);
    }
    expect(instance('tamper').entries.batched - before).toBe(10);
  });
});
