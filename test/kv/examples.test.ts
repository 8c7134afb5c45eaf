// The KV examples as users run them: over real HTTP, on SQLite, keeping their state across a
// server restart; and `cinder dev --kv NAME` with the in-memory backend.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { createKVService, installKV, type KVService } from '../../bindings/kv/index.js';
import { startDev } from '../../src/app/dev.js';
import { captureLogger, startTestServer, type TestServer } from '../helpers/server.js';

const example = (name: string) => fileURLToPath(new URL(`../../examples/${name}`, import.meta.url));

/** A server with the example deployed and its KV in SQLite under `dataDir`; stop() is a restart's first half. */
async function serve(dataDir: string, file: string, binding: string): Promise<{ server: TestServer; kv: KVService; stop(): Promise<void> }> {
  const kv = createKVService({ data: dataDir }, { sweepIntervalMs: 0 });
  const server = await startTestServer({ app: { code: readFileSync(example(file), 'utf8'), bindings: { [binding]: { type: 'kv_namespace', namespace_id: `${binding.toLowerCase()}-ns` } } } });
  installKV(server.runtime, kv);
  return {
    server,
    kv,
    async stop() {
      await server.close();
      await kv.close();
    },
  };
}

describe('examples/kv-counter.js', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'cinder-kv-counter-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('counts per path over HTTP and keeps counting after a restart', async () => {
    let app = await serve(dataDir, 'kv-counter.js', 'COUNTER');
    const counts = [];
    for (let i = 0; i < 3; i++) counts.push(JSON.parse((await app.server.request('app', '/home')).text).count);
    expect(JSON.parse((await app.server.request('app', '/about')).text)).toEqual({ path: '/about', count: 1 });
    expect(counts).toEqual([1, 2, 3]);
    await app.stop();

    app = await serve(dataDir, 'kv-counter.js', 'COUNTER');
    try {
      expect(JSON.parse((await app.server.request('app', '/home')).text)).toEqual({ path: '/home', count: 4 });
      expect(JSON.parse((await app.server.request('app', '/home', { method: 'DELETE' })).text).count).toBe(0);
      expect(JSON.parse((await app.server.request('app', '/home')).text).count).toBe(1);
    } finally {
      await app.stop();
    }
  });

  it('says what to bind when run without KV', async () => {
    const server = await startTestServer({ app: readFileSync(example('kv-counter.js'), 'utf8') });
    try {
      const response = await server.request('app', '/');
      expect(response.status).toBe(500);
      expect(response.text).toMatch(/COUNTER/);
    } finally {
      await server.close();
    }
  });
});

describe('examples/url-shortener.js', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'cinder-kv-links-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const post = (server: TestServer, body: unknown) =>
    server.request('app', '/links', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('shortens, redirects, lists and deletes over HTTP, and keeps links across a restart', async () => {
    let app = await serve(dataDir, 'url-shortener.js', 'LINKS');
    const created = await post(app.server, { url: 'https://example.com/some/long/path?q=1' });
    expect(created.status).toBe(201);
    const link = JSON.parse(created.text);
    expect(link.id).toMatch(/^[0-9A-Za-z]{7}$/);
    expect(link.short).toBe(`http://app.test/${link.id}`);
    const chosen = await post(app.server, { url: 'https://cinder.dev/', id: 'home' });
    expect(chosen.status).toBe(201);
    expect((await post(app.server, { url: 'https://elsewhere.dev/', id: 'home' })).status).toBe(409);
    expect((await post(app.server, { url: 'javascript:alert(1)' })).status).toBe(400);
    expect((await post(app.server, { url: 'https://x.dev/', ttl: 5 })).text).toMatch(/Expiration TTL must be at least 60/);

    const redirect = await app.server.request('app', `/${link.id}`);
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toBe('https://example.com/some/long/path?q=1');
    await app.stop();

    app = await serve(dataDir, 'url-shortener.js', 'LINKS');
    try {
      expect((await app.server.request('app', '/home')).headers.location).toBe('https://cinder.dev/');
      const listed = JSON.parse((await app.server.request('app', '/links')).text);
      expect(listed.cursor).toBeNull();
      expect(listed.links.map((l: { id: string; url: string }) => [l.id, l.url]).sort()).toEqual(
        [['home', 'https://cinder.dev/'], [link.id, 'https://example.com/some/long/path?q=1']].sort(),
      );
      expect((await app.server.request('app', '/links/home', { method: 'DELETE' })).status).toBe(204);
      expect((await app.server.request('app', '/home')).status).toBe(404);
    } finally {
      await app.stop();
    }
  });
});

describe('cinder dev --kv', () => {
  it('binds an in-memory namespace per --kv NAME', async () => {
    const { logger } = captureLogger();
    const dev = await startDev({ paths: [example('kv-counter.js')], port: 0, kvNamespaces: ['COUNTER'], logger });
    try {
      const get = async () => JSON.parse(await (await request(`${dev.url}/x`)).body.text());
      expect(await get()).toEqual({ path: '/x', count: 1 });
      expect(await get()).toEqual({ path: '/x', count: 2 });
      expect((await dev.kv!.get('COUNTER', 'count:/x'))!.value.toString()).toBe('2');
    } finally {
      await dev.close();
    }
  });

  it('also backs kv_namespace bindings from a wrangler config with memory', async () => {
    const { logger } = captureLogger();
    const dev = await startDev({ paths: [example('url-shortener.js')], port: 0, bindings: { LINKS: { type: 'kv_namespace', namespace_id: 'links-dev' } }, logger });
    try {
      const created = await request(`${dev.url}/links`, { method: 'POST', body: JSON.stringify({ url: 'https://example.com/', id: 'exa' }) });
      expect(created.statusCode).toBe(201);
      await created.body.dump();
      const redirect = await request(`${dev.url}/exa`);
      await redirect.body.dump();
      expect([redirect.statusCode, redirect.headers.location]).toEqual([302, 'https://example.com/']);
    } finally {
      await dev.close();
    }
  });

  it('refuses a binding name that is not an identifier', async () => {
    const { logger } = captureLogger();
    await expect(startDev({ paths: [example('kv-counter.js')], port: 0, kvNamespaces: ['not-valid'], logger })).rejects.toThrow(/invalid KV binding name/);
  });
});
