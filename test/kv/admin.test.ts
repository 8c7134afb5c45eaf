// The KV admin routes (mounted by the control plane at /kv): list, get, put, delete, with
// metadata and expiration, through the same service (and errors) workers use.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { installKV, KVService, MemoryBackend } from '../../bindings/kv/index.js';
import { kvRoutes } from '../../src/control/kv-routes.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { TestClock } from './fixtures.js';

describe('KV admin API', () => {
  let kv: KVService;
  let app: Hono;
  const clock = new TestClock();

  beforeAll(() => {
    kv = new KVService({ backend: new MemoryBackend(), clock: clock.now, sweepIntervalMs: 0 });
    // Mounted the way the control plane mounts route modules.
    app = new Hono().route('/kv', kvRoutes(kv));
  });
  afterAll(() => kv.close());

  const put = (path: string, body: BodyInit, headers: Record<string, string> = {}) => app.request(`/kv/ns${path}`, { method: 'PUT', body, headers });

  it('puts and gets raw values, with metadata and expiration in headers', async () => {
    expect(await (await put('/values/greeting', 'hello', { 'cf-kv-metadata': '{"lang":"en"}' })).json()).toEqual({ ok: true });
    const response = await app.request('/kv/ns/values/greeting');
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('hello');
    expect(response.headers.get('cf-kv-metadata')).toBe('{"lang":"en"}');
    expect(response.headers.get('cf-expiration')).toBeNull();

    const expiration = clock.seconds() + 600;
    expect((await put(`/values/temp?expiration=${expiration}`, new Uint8Array([0, 1, 255]))).status).toBe(200);
    const temp = await app.request('/kv/ns/values/temp');
    expect([...new Uint8Array(await temp.arrayBuffer())]).toEqual([0, 1, 255]);
    expect(temp.headers.get('cf-expiration')).toBe(String(expiration));
  });

  it('takes multipart uploads as Cloudflare’s API does, and keys with slashes', async () => {
    const form = new FormData();
    form.set('value', new Blob([new Uint8Array([7, 8, 9])]));
    form.set('metadata', JSON.stringify({ from: 'form' }));
    expect((await put('/values/dir%2Fwith/slashes?expiration_ttl=120', form)).status).toBe(200);
    const read = await kv.get('ns', 'dir/with/slashes');
    expect([...read!.value]).toEqual([7, 8, 9]);
    expect(JSON.parse(read!.metadata!)).toEqual({ from: 'form' });
    expect(read!.expiration).toBeGreaterThanOrEqual(clock.seconds() + 119);
  });

  it('lists keys with prefix, limit and cursor, metadata parsed', async () => {
    for (const key of ['list:a', 'list:b', 'list:c']) await kv.put('ns', key, 'v', { metadata: JSON.stringify({ key }) });
    const first = await (await app.request('/kv/ns/keys?prefix=list:&limit=2')).json();
    expect(first).toMatchObject({ keys: [{ name: 'list:a', metadata: { key: 'list:a' } }, { name: 'list:b' }], list_complete: false });
    const second = await (await app.request(`/kv/ns/keys?prefix=list:&limit=2&cursor=${first.cursor}`)).json();
    expect(second).toEqual({ keys: [{ name: 'list:c', metadata: { key: 'list:c' } }], list_complete: true });
  });

  it('deletes, and answers 404 for a missing key', async () => {
    await kv.put('ns', 'doomed', 'v');
    expect(await (await app.request('/kv/ns/values/doomed', { method: 'DELETE' })).json()).toEqual({ ok: true });
    const missing = await app.request('/kv/ns/values/doomed');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'key not found: doomed' });
  });

  it('answers limit violations with the KV API status and message', async () => {
    const cases: [Promise<Response>, number, string][] = [
      [put('/values/k?expiration_ttl=10', 'v'), 400, 'Invalid expiration_ttl of 10. Expiration TTL must be at least 60.'],
      [put('/values/k', 'v', { 'cf-kv-metadata': JSON.stringify('x'.repeat(1100)) }), 413, 'Metadata length of 1102 exceeds limit of 1024.'],
      [put('/values/k', 'v', { 'cf-kv-metadata': '{not json' }), 400, 'Metadata must be valid JSON'],
      [put(`/values/${'k'.repeat(513)}`, 'v'), 414, 'UTF-8 encoded length of 513 exceeds key length limit of 512.'],
      [app.request('/kv/ns/keys?limit=5000'), 400, 'Invalid key_count_limit of 5000. Please specify an integer less than 1000.'],
      [app.request(`/kv/ns/keys?prefix=${'p'.repeat(513)}`), 414, 'UTF-8 encoded length of 513 exceeds key length limit of 512.'],
      [app.request('/kv/ns/keys?cursor=nope!'), 400, 'Invalid cursor'],
    ];
    for (const [pending, status, error] of cases) {
      const response = await pending;
      expect([response.status, await response.json()]).toEqual([status, { error }]);
    }
    const tooBig = await put('/values/big', new Uint8Array(25 * 1024 * 1024 + 1));
    expect(tooBig.status).toBe(413);
    expect(await tooBig.json()).toEqual({ error: `Value length of ${25 * 1024 * 1024 + 1} exceeds limit of ${25 * 1024 * 1024}.` });
  });
});

describe('KV admin writes and workers', () => {
  let server: TestServer;
  let kv: KVService;
  beforeAll(async () => {
    kv = new KVService({ backend: new MemoryBackend(), sweepIntervalMs: 0 });
    server = await startTestServer({
      reader: { code: `export default { async fetch(req, env) { return new Response(String(await env.KV.get('k'))); } }`, bindings: { KV: { type: 'kv_namespace', namespace_id: 'shared' } } },
    });
    installKV(server.runtime, kv);
  });
  afterAll(async () => {
    await server.close();
    await kv.close();
  });

  it('a write through the admin API is what the worker reads next on this node', async () => {
    const app = kvRoutes(kv);
    expect(await (await server.request('reader', '/')).text).toBe('null');
    await app.request('/shared/values/k', { method: 'PUT', body: 'from admin' });
    expect((await server.request('reader', '/')).text).toBe('from admin');
    await app.request('/shared/values/k', { method: 'DELETE' });
    expect((await server.request('reader', '/')).text).toBe('null');
  });
});
