// The Cache API (caches.default, caches.open) in workers: what is stored and for how long,
// Vary, conditional and ranged answers, workerd's errors, bounds, and one account's cache
// unreachable from another's. (workerd run locally has no cache behind the API, so there is no
// differential here: its caches answer every match with undefined.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { installCache } from '../../bindings/cache/host.js';
import { CacheStore } from '../../bindings/cache/store.js';

// One worker drives the cache from query parameters: op, the stored response's headers/status/body,
// the match request's headers, and an optional named cache.
const driver = `export default { async fetch(req) {
  const url = new URL(req.url);
  const p = (k, d) => url.searchParams.get(k) ?? d;
  const key = 'https://example.com' + url.pathname;
  const cache = p('name') ? await caches.open(p('name')) : caches.default;
  try {
    switch (p('op')) {
      case 'put':
        await cache.put(new Request(key, { method: p('method', 'GET'), headers: JSON.parse(p('req', '{}')) }),
          new Response(p('body', 'cached body').repeat(Number(p('repeat', '1'))), { status: Number(p('status', '200')), headers: JSON.parse(p('headers', '{}')) }));
        return new Response('stored');
      case 'match': {
        const res = await cache.match(new Request(key, { headers: JSON.parse(p('req', '{}')) }));
        if (!res) return new Response('miss', { status: 404 });
        return new Response(await res.text(), { headers: {
          'x-status': String(res.status), 'x-cache': res.headers.get('cf-cache-status') ?? '',
          'x-range': res.headers.get('content-range') ?? '', 'x-cookie': res.headers.get('set-cookie') ?? '' } });
      }
      case 'delete':
        return new Response(String(await cache.delete(key)));
    }
  } catch (e) { return new Response(e.constructor.name + ': ' + e.message, { status: 500 }) }
  return new Response('unknown op', { status: 400 });
} }`;

function q(params: Record<string, string | object>): string {
  return new URLSearchParams(Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])).toString();
}

describe('Cache API', () => {
  let server: TestServer;
  let dir: string;
  let store: CacheStore;
  let clock = Date.now();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cinder-cache-'));
    server = await startTestServer({
      cache: driver,
      other: { code: driver, account: 'acct-b' },
      mine: { code: driver, account: 'acct-a' },
      plain: `export default { fetch() { return new Response(typeof globalThis['cach' + 'es']) } }`,
    });
    store = new CacheStore({ path: join(dir, 'cache.sqlite'), maxNamespaceBytes: 64 * 1024 });
    installCache(server.runtime, store, { maxEntryBytes: 16 * 1024, now: () => clock });
  });
  afterAll(async () => {
    await server.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = (path: string, params: Record<string, string | object>, worker = 'cache') => server.request(worker, `${path}?${q(params)}`);

  it('stores a response and answers it with cf-cache-status HIT; a miss is undefined', async () => {
    expect((await call('/a', { op: 'put', body: 'hello cache' })).text).toBe('stored');
    const hit = await call('/a', { op: 'match' });
    expect(hit.text).toBe('hello cache');
    expect(hit.headers['x-status']).toBe('200');
    expect(hit.headers['x-cache']).toBe('HIT');
    expect((await call('/nothing', { op: 'match' })).status).toBe(404);
  });

  it('deletes every variant of a URL and says whether anything was there', async () => {
    await call('/del', { op: 'put' });
    expect((await call('/del', { op: 'delete' })).text).toBe('true');
    expect((await call('/del', { op: 'match' })).status).toBe(404);
    expect((await call('/del', { op: 'delete' })).text).toBe('false');
  });

  it('does not store no-store, no-cache, private or Set-Cookie responses, nor statuses without a default TTL', async () => {
    for (const [path, headers, status] of [
      ['/ns', { 'cache-control': 'no-store' }, '200'],
      ['/nc', { 'cache-control': 'no-cache' }, '200'],
      ['/pv', { 'cache-control': 'private' }, '200'],
      ['/ck', { 'set-cookie': 'id=1' }, '200'],
      ['/err', {}, '500'],
    ] as const) {
      expect((await call(path, { op: 'put', headers, status })).text).toBe('stored');
      expect((await call(path, { op: 'match' })).status, path).toBe(404);
    }
  });

  it('stores a response without Set-Cookie when Cache-Control says private=Set-Cookie', async () => {
    await call('/pc', { op: 'put', headers: { 'cache-control': 'private=Set-Cookie, max-age=60', 'set-cookie': 'id=1' } });
    const hit = await call('/pc', { op: 'match' });
    expect(hit.text).toBe('cached body');
    expect(hit.headers['x-cookie']).toBe('');
  });

  it('keeps an entry for its max-age (s-maxage first), its Expires, or the default TTL of its status', async () => {
    clock = Date.now();
    await call('/ttl60', { op: 'put', headers: { 'cache-control': 'max-age=60' } });
    await call('/smax', { op: 'put', headers: { 'cache-control': 'max-age=600, s-maxage=10' } });
    await call('/exp', { op: 'put', headers: { expires: new Date(clock + 30_000).toUTCString() } });
    await call('/404', { op: 'put', status: '404' });
    clock += 20_000;
    expect((await call('/smax', { op: 'match' })).status).toBe(404);
    expect((await call('/ttl60', { op: 'match' })).status).toBe(200);
    expect((await call('/exp', { op: 'match' })).status).toBe(200);
    clock += 20_000;
    expect((await call('/exp', { op: 'match' })).status).toBe(404);
    expect((await call('/ttl60', { op: 'match' })).status).toBe(200);
    clock += 30_000;
    expect((await call('/ttl60', { op: 'match' })).status).toBe(404);
    expect((await call('/404', { op: 'match' })).headers['x-status']).toBe('404');
    clock += 3 * 60_000;
    expect((await call('/404', { op: 'match' })).status).toBe(404);
  });

  it('answers only the Vary variant the request matches', async () => {
    await call('/v', { op: 'put', body: 'english', headers: { vary: 'Accept-Language' }, req: { 'accept-language': 'en' } });
    await call('/v', { op: 'put', body: 'french', headers: { vary: 'Accept-Language' }, req: { 'accept-language': 'fr' } });
    expect((await call('/v', { op: 'match', req: { 'accept-language': 'en' } })).text).toBe('english');
    expect((await call('/v', { op: 'match', req: { 'accept-language': 'fr' } })).text).toBe('french');
    expect((await call('/v', { op: 'match', req: { 'accept-language': 'de' } })).status).toBe(404);
  });

  it('answers If-None-Match and If-Modified-Since with 304, and a byte range with 206 or 416', async () => {
    const lastModified = new Date(Date.now() - 3600_000).toUTCString();
    await call('/c', { op: 'put', body: '0123456789', headers: { etag: '"v1"', 'last-modified': lastModified, 'cache-control': 'max-age=600' } });
    expect((await call('/c', { op: 'match', req: { 'if-none-match': 'W/"v1"' } })).headers['x-status']).toBe('304');
    expect((await call('/c', { op: 'match', req: { 'if-none-match': '"v2"' } })).headers['x-status']).toBe('200');
    expect((await call('/c', { op: 'match', req: { 'if-modified-since': new Date().toUTCString() } })).headers['x-status']).toBe('304');
    const ranged = await call('/c', { op: 'match', req: { range: 'bytes=2-5' } });
    expect([ranged.headers['x-status'], ranged.headers['x-range'], ranged.text]).toEqual(['206', 'bytes 2-5/10', '2345']);
    const suffix = await call('/c', { op: 'match', req: { range: 'bytes=-3' } });
    expect(suffix.text).toBe('789');
    const outside = await call('/c', { op: 'match', req: { range: 'bytes=20-30' } });
    expect([outside.headers['x-status'], outside.headers['x-range']]).toEqual(['416', 'bytes */10']);
  });

  it("refuses what workerd refuses: non-GET requests, 206 responses, Vary: *", async () => {
    expect((await call('/e', { op: 'put', method: 'POST' })).text).toBe('TypeError: Cannot cache response to non-GET request.');
    expect((await call('/e', { op: 'put', status: '206' })).text).toBe('TypeError: Cannot cache response to a range request (206 Partial Content).');
    expect((await call('/e', { op: 'put', headers: { vary: '*' } })).text).toBe("TypeError: Cannot cache response with 'Vary: *' header.");
  });

  it('bounds an entry, and evicts the least recently used past a namespace total', async () => {
    const tooBig = await call('/big', { op: 'put', body: 'x', repeat: String(17 * 1024) });
    expect(tooBig.text).toMatch(/^RangeError: Response body too large to cache/);
    // 64 KiB per namespace: eight 10 KiB entries cannot all stay.
    for (let i = 0; i < 8; i++) await call(`/lru${i}`, { op: 'put', body: String(i), repeat: String(10 * 1024), name: 'lru' });
    const kept = [];
    for (let i = 0; i < 8; i++) if ((await call(`/lru${i}`, { op: 'match', name: 'lru' })).status === 200) kept.push(i);
    expect(kept.length).toBeLessThan(8);
    expect(kept).toContain(7);
    expect(kept).not.toContain(0);
  });

  it('keeps named caches apart from caches.default', async () => {
    await call('/n', { op: 'put', body: 'named', name: 'mine' });
    expect((await call('/n', { op: 'match' })).status).toBe(404);
    expect((await call('/n', { op: 'match', name: 'mine' })).text).toBe('named');
  });

  it("keeps one account's caches out of another's reach", async () => {
    await call('/secret', { op: 'put', body: 'account a data' }, 'mine');
    expect((await call('/secret', { op: 'match' }, 'mine')).text).toBe('account a data');
    expect((await call('/secret', { op: 'match' }, 'other')).status).toBe(404);
    expect((await call('/secret', { op: 'delete' }, 'other')).text).toBe('false');
    expect((await call('/secret', { op: 'match' }, 'mine')).text).toBe('account a data');
  });

  it('keeps entries in the SQLite file across a reopen', async () => {
    await call('/persist', { op: 'put', body: 'kept', headers: { 'cache-control': 'max-age=600' } });
    const again = new CacheStore({ path: join(dir, 'cache.sqlite') });
    try {
      expect(again.variants('\n', 'https://example.com/persist', clock).map((v) => v.body.toString())).toEqual(['kept']);
    } finally {
      again.close();
    }
  });

  it('is installed only in isolates of workers that use it', async () => {
    expect((await server.request('plain')).text).toBe('undefined');
  });
});

describe('Cache API in cinder serve', () => {
  it('keeps what a worker cached across a restart of the server (SQLite under --data)', async () => {
    const { startCinder, tempDataDir, multipart } = await import('../control/helpers.js');
    const dataDir = tempDataDir();
    let cinder = await startCinder({ dataDir });
    try {
      const worker = `export default { async fetch(req) {
        const key = 'https://cached.example/item';
        if (req.method === 'PUT') { await caches.default.put(key, new Response('from before', { headers: { 'cache-control': 'max-age=3600' } })); return new Response('ok'); }
        const hit = await caches.default.match(key);
        return new Response(hit ? await hit.text() : 'miss');
      } }`;
      expect((await cinder.admin('PUT', '/workers/cached', { body: multipart({ main_module: 'index.js' }, { 'index.js': worker }) })).status).toBe(201);
      expect((await cinder.get('cached.localhost', '/', { method: 'PUT' })).text).toBe('ok');
      await cinder.close();
      cinder = await startCinder({ dataDir });
      expect((await cinder.get('cached.localhost', '/')).text).toBe('from before');
    } finally {
      await cinder.close({ cleanup: true });
    }
  });
});
