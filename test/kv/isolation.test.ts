// Which namespaces a worker reaches: exactly those bound to it. Two workers bound to one
// namespace share it; nothing a worker sends can name its way into another one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installKV, KVService, MemoryBackend, type StoredEntry } from '../../bindings/kv/index.js';
import { KV_OPS } from '../../protocol/wall.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { kvWorker } from './fixtures.js';

const kvBinding = (namespace_id: string) => ({ type: 'kv_namespace' as const, namespace_id });

async function call(server: TestServer, worker: string): Promise<{ ok?: unknown; error?: { name: string; message: string } }> {
  const response = await server.request(worker, '/');
  expect(response.status).toBe(200);
  return JSON.parse(response.text);
}

describe('KV isolation between workers', () => {
  let server: TestServer;
  let kv: KVService;

  beforeAll(async () => {
    server = await startTestServer({});
    kv = new KVService({ backend: new MemoryBackend(), sweepIntervalMs: 0 });
    installKV(server.runtime, kv);
  });
  afterAll(async () => {
    await server.close();
    await kv.close();
  });

  function deploy(name: string, body: string, bindings: Record<string, ReturnType<typeof kvBinding> | { type: 'plain_text'; text: string }>) {
    server.deploy(name, { code: kvWorker(body), bindings });
  }

  it('shares a namespace between workers bound to it, under any binding name', async () => {
    deploy('writer', `await env.KV.put('greeting', 'from writer'); return 'ok';`, { KV: kvBinding('shared') });
    deploy('reader', `return await env.DATA.get('greeting');`, { DATA: kvBinding('shared') });
    expect(await call(server, 'writer')).toEqual({ ok: 'ok' });
    expect(await call(server, 'reader')).toEqual({ ok: 'from writer' });
  });

  it('keeps namespaces apart, even under the same binding name', async () => {
    deploy('a', `await env.KV.put('k', 'a'); return (await env.KV.list()).keys.map((k) => k.name);`, { KV: kvBinding('ns-a') });
    deploy('b', `return [await env.KV.get('k'), (await env.KV.list()).keys.length];`, { KV: kvBinding('ns-b') });
    expect(await call(server, 'a')).toEqual({ ok: ['k'] });
    expect(await call(server, 'b')).toEqual({ ok: [null, 0] });
  });

  it('gives a worker without the binding no env entry, and no way to make one', async () => {
    deploy('unbound', `
      const out = [typeof env.KV, Object.keys(env).join()];
      try { new (Object.getPrototypeOf(env.OTHER).constructor)(Symbol('forged'), 'KV'); } catch (e) { out.push(e.message); }
      try { await Object.getPrototypeOf(env.OTHER).get.call({ binding: 'KV' }, 'greeting'); } catch (e) { out.push(e.name); }
      return out;`, { OTHER: kvBinding('mine') });
    const out = (await call(server, 'unbound')).ok as string[];
    expect(out.slice(0, 3)).toEqual(['undefined', 'OTHER', 'Illegal constructor']);
    expect(out[3]).toBe('TypeError');
  });

  it('refuses, on the host, binding names the worker does not have or that are not KV', async () => {
    // What a compromised guest could send: any binding name at all. Call the op as the bridge would.
    const def = server.deploy('forger', { code: kvWorker('return 1;'), bindings: { KV: kvBinding('mine'), SECRET: { type: 'plain_text', text: 's3cret' } } });
    const op = server.runtime.ops.get(KV_OPS.get)!;
    const asForger = { worker: def, invocation: undefined, binding: (name: string) => def.bindings[name] };
    for (const name of ['shared', 'OTHER', 'SECRET', '__proto__', 'constructor', 'toString', 42]) {
      await expect(op(asForger, [name, 'greeting', 'text', undefined])).rejects.toThrow(TypeError);
    }
    await expect(op(asForger, ['KV', 'greeting', 'text', undefined])).resolves.toBeNull();
    for (const opName of Object.values(KV_OPS)) {
      await expect(server.runtime.ops.get(opName)!(asForger, ['shared', 'k', 'v', {}])).rejects.toThrow(/not a KV namespace bound to this worker/);
    }
  });

  it('loses access when a redeploy drops the binding', async () => {
    deploy('fickle', `return await env.KV.get('greeting');`, { KV: kvBinding('shared') });
    expect(await call(server, 'fickle')).toEqual({ ok: 'from writer' });
    deploy('fickle', `return typeof env.KV;`, {});
    expect(await call(server, 'fickle')).toEqual({ ok: 'undefined' });
  });
});

describe('KV calls from the isolate', () => {
  it('limit how many one invocation may make', async () => {
    const server = await startTestServer({});
    const kv = new KVService({ backend: new MemoryBackend(), sweepIntervalMs: 0 });
    installKV(server.runtime, kv, { maxOpsPerInvocation: 5 });
    try {
      server.deploy('greedy', { code: kvWorker(`for (let i = 0; i < 6; i++) await env.KV.get('k' + i);`), bindings: { KV: kvBinding('n') } });
      const out = JSON.parse((await server.request('greedy', '/')).text);
      expect(out.error).toMatchObject({ name: 'Error', message: 'Too many API requests by single worker invocation.' });
      server.deploy('modest', { code: kvWorker(`for (let i = 0; i < 5; i++) await env.KV.get('k' + i); return 'fine';`), bindings: { KV: kvBinding('n') } });
      expect(JSON.parse((await server.request('modest', '/')).text)).toEqual({ ok: 'fine' });
    } finally {
      await server.close();
      await kv.close();
    }
  });

  it('do not block the isolate: other requests run while one waits on KV', async () => {
    // A backend whose read of "slow" takes 600 ms.
    const backend = new MemoryBackend();
    const get = backend.get.bind(backend);
    backend.get = async (namespace: string, key: string, now: number): Promise<StoredEntry | null> => {
      if (key === 'slow') await new Promise((r) => setTimeout(r, 600));
      return get(namespace, key, now);
    };
    const server = await startTestServer({});
    const kv = new KVService({ backend, sweepIntervalMs: 0, cache: false });
    installKV(server.runtime, kv);
    try {
      server.deploy('w', {
        code: `export default { async fetch(request, env) {
          const key = new URL(request.url).pathname.slice(1);
          return new Response(String(await env.KV.get(key)));
        } };`,
        bindings: { KV: kvBinding('n') },
      });
      await kv.put('n', 'slow', 'slow value');
      await kv.put('n', 'fast', 'fast value');
      await server.request('w', '/fast'); // warm the isolate
      const started = performance.now();
      const slow = server.request('w', '/slow').then((r) => ({ text: r.text, ms: performance.now() - started }));
      await new Promise((r) => setTimeout(r, 50));
      const fast = await server.request('w', '/fast');
      const fastMs = performance.now() - started;
      expect(fast.text).toBe('fast value');
      const slowResult = await slow;
      expect(slowResult.text).toBe('slow value');
      expect(fastMs).toBeLessThan(400);
      expect(slowResult.ms).toBeGreaterThanOrEqual(590);
    } finally {
      await server.close();
      await kv.close();
    }
  });
});
