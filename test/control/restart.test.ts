// Restarting `cinder serve` with the same --data brings back every worker, version, route and the
// live version chosen by rollback; the admin token generated on first start is kept.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { captureLogger } from '../helpers/server.js';
import { startServe } from '../../src/app/serve.js';
import { multipart, startCinder, tempDataDir, textWorker, type TestCinder } from './helpers.js';

const dataDir = tempDataDir();
let cinder: TestCinder | undefined;
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

async function snapshot(c: TestCinder) {
  const workers = (await c.admin('GET', '/workers')).body;
  const routes = (await c.admin('GET', '/routes')).body;
  const details: Record<string, unknown> = {};
  for (const { name } of workers.workers) {
    details[name] = { worker: (await c.admin('GET', `/workers/${name}`)).body, versions: (await c.admin('GET', `/workers/${name}/versions`)).body };
  }
  return { workers, routes, details };
}

async function served(c: TestCinder) {
  return {
    app: (await c.get('app.example.com', '/')).text,
    api: (await c.get('example.com', '/api/users')).text,
    apiByHost: (await c.get('api.localhost', '/')).text,
    gateway: (await c.get('gateway.example.com', '/')).text,
    wildcard: (await c.get('www.example.org', '/')).text,
  };
}

describe('restart', () => {
  let before: Awaited<ReturnType<typeof snapshot>>;
  let servedBefore: Awaited<ReturnType<typeof served>>;

  it('serves workers, routes, bindings and a rollback before the restart', async () => {
    cinder = await startCinder({ dataDir });
    const put = (name: string, body: FormData | string) => cinder!.admin('PUT', `/workers/${name}`, { body });

    expect((await put('app', multipart({ main_module: 'src/index.js', routes: ['*.example.org/*'] }, {
      'src/index.js': `import { name } from "./lib/name.js"; export default { fetch() { return new Response("app " + name); } };`,
      'src/lib/name.js': `export const name = "multi-module";`,
    }))).status).toBe(201);
    expect((await put('api', multipart({ main_module: 'index.js', routes: ['example.com/api/*'], vars: { WHO: 'api v1' } }, {
      'index.js': `export default { fetch(req, env) { return new Response(env.WHO); } };`,
    }))).status).toBe(201);
    expect((await put('api', multipart({ main_module: 'index.js', vars: { WHO: 'api v2 (broken)' } }, {
      'index.js': `export default { fetch(req, env) { return new Response(env.WHO); } };`,
    }))).status).toBe(201);
    expect((await cinder.admin('POST', '/workers/api/rollback')).status).toBe(200);
    expect((await put('gateway', multipart({ main_module: 'index.js', bindings: [{ type: 'service', name: 'API', service: 'api' }, { type: 'secret_text', name: 'KEY', text: 'restart-secret' }] }, {
      'index.js': `export default { async fetch(req, env) { const r = await env.API.fetch("https://api/"); return new Response("gateway -> " + await r.text() + " " + env.KEY.length); } };`,
    }))).status).toBe(201);
    expect((await put('plain', textWorker('plain'))).status).toBe(201);
    expect((await cinder.admin('DELETE', '/workers/plain')).status).toBe(200);

    servedBefore = await served(cinder);
    expect(servedBefore).toEqual({
      app: 'app multi-module',
      api: 'api v1',
      apiByHost: 'api v1',
      gateway: 'gateway -> api v1 14',
      wildcard: 'app multi-module',
    });
    before = await snapshot(cinder);
    expect(before.workers.workers.map((w: { name: string }) => w.name)).toEqual(['api', 'app', 'gateway']);
    await cinder.close();
    cinder = undefined;
  });

  it('has all of it back after a restart with the same data directory', async () => {
    cinder = await startCinder({ dataDir });
    expect(cinder.server.restored).toEqual({ workers: ['api', 'app', 'gateway'], routes: 2, failed: [] });
    expect(await snapshot(cinder)).toEqual(before);
    expect(await served(cinder)).toEqual(servedBefore);
    expect((await cinder.get('plain.example.com')).status).toBe(404);
    // versions continue where they were
    const next = await cinder.admin('PUT', '/workers/api', { body: textWorker('api v3') });
    expect(next.body.number).toBe(3);
  });

  it('restores from the stored V8 code cache', async () => {
    await cinder!.close();
    cinder = await startCinder({ dataDir });
    const def = cinder.server.runtime.definition('app')!;
    expect([...def.codeCache!.keys()].sort()).toEqual(['src/index.js', 'src/lib/name.js']);
    expect((await cinder.get('app.example.com')).text).toBe('app multi-module');
  });

  it('replaces a stored code cache that V8 rejects, and still serves', async () => {
    const version = cinder!.server.runtime.definition('app')!.version;
    const good = await cinder!.server.store.getCodeCache(version);
    const damaged = new Map([...good.modules].map(([module, data]) => [module, Buffer.alloc(data.length, 0x5a)]));
    await cinder!.server.store.putCodeCache(version, { modules: damaged, afterRun: true });
    await cinder!.close();
    // Without deployment snapshots: a version whose snapshot was stored before the restart would
    // start from it and compile nothing, so the damaged cache would go unread (a race with the
    // background snapshot build that made this test flaky).
    cinder = await startCinder({ dataDir, deploymentSnapshots: false });
    expect((await cinder.get('app.example.com')).text).toBe('app multi-module');
    expect(cinder.logs.some((l) => l.msg === 'stored code cache was rejected by V8; storing a fresh one' && l.worker === 'app')).toBe(true);
    await vi.waitFor(async () => {
      const stored = await cinder!.server.store.getCodeCache(version);
      expect([...stored.modules.keys()].sort()).toEqual(['src/index.js', 'src/lib/name.js']);
      for (const [module, data] of stored.modules) expect(data.equals(damaged.get(module)!)).toBe(false);
      // the replacement was made at compile time, then again after the request above
      expect(stored.afterRun).toBe(true);
    });
  });

  it('does not make the after-first-request code cache again after a restart', async () => {
    const version = cinder!.server.runtime.definition('app')!.version;
    await vi.waitFor(async () => expect((await cinder!.server.store.getCodeCache(version)).afterRun).toBe(true));
    const stored = await cinder!.server.store.getCodeCache(version);
    await cinder!.close();
    cinder = await startCinder({ dataDir });
    const def = cinder.server.runtime.definition('app')!;
    expect(def.codeCacheAfterRun).toBe(true);
    const updates: string[] = [];
    const onUpdated = def.onCodeCacheUpdated!;
    def.onCodeCacheUpdated = (cache, reason) => {
      updates.push(reason);
      onUpdated(cache, reason);
    };
    for (let i = 0; i < 3; i++) expect((await cinder.get('app.example.com')).text).toBe('app multi-module');
    // The after-run cache is made from a setImmediate once the isolate is idle; give it the time
    // it takes before a restart (where the same wait sees it: the test above).
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(updates).toEqual([]);
    expect(def.codeCache).toEqual(stored.modules);
    expect(await cinder.server.store.getCodeCache(version)).toEqual(stored);
  });
});

describe('admin token', () => {
  it('is generated once into <data>/admin-token (0600) and reused after a restart', async () => {
    const dir = tempDataDir();
    const saved = process.env.CINDER_ADMIN_TOKEN;
    delete process.env.CINDER_ADMIN_TOKEN;
    try {
      const first = await startServe({ logger: captureLogger().logger, port: 0, adminPort: 0, host: '127.0.0.1', dataDir: dir });
      expect(first.tokenSource).toBe('generated');
      expect(first.token.length).toBeGreaterThanOrEqual(32);
      expect(statSync(join(dir, 'admin-token')).mode & 0o777).toBe(0o600);
      const token = first.token;
      await first.close();

      const { logger, logs } = captureLogger();
      const second = await startServe({ logger, port: 0, adminPort: 0, host: '127.0.0.1', dataDir: dir });
      expect(second.tokenSource).toBe('file');
      expect(second.token).toBe(token);
      const res = await fetch(`${second.adminUrl}/workers`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      await second.close();
      expect(JSON.stringify(logs)).not.toContain(token);

      process.env.CINDER_ADMIN_TOKEN = 'from-the-environment-0123456789';
      const third = await startServe({ logger, port: 0, adminPort: 0, host: '127.0.0.1', dataDir: dir });
      expect(third.tokenSource).toBe('env');
      expect(third.token).toBe('from-the-environment-0123456789');
      await third.close();
    } finally {
      if (saved === undefined) delete process.env.CINDER_ADMIN_TOKEN;
      else process.env.CINDER_ADMIN_TOKEN = saved;
    }
  });
});
