// The Redis deployment store on its own, against a real redis-server: the same contract as the
// SQLite store (test/control/store.test.ts), plus what only a shared store meets: two nodes
// publishing at once (optimistic transactions retried, numbers never reused), another node seeing
// every write, and Redis down refusing writes at once with StoreUnavailableError.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findRedisServer } from '../kv/fixtures.js';
import { AccountExistsError, RedisDeploymentStore, RouteConflictError, StoreUnavailableError, WorkerOwnedError, type NewVersion } from '../../src/store/index.js';
import { startRedis, type RestartableRedis } from './helpers.js';

const redisBinary = findRedisServer();
let redis: RestartableRedis;
const opened: RedisDeploymentStore[] = [];

beforeAll(async () => {
  if (redisBinary) redis = await startRedis(redisBinary);
}, 30_000);

afterAll(async () => {
  for (const store of opened) await store.close();
  await redis?.cleanup();
});

let n = 0;
/** A store under a prefix of its own (a fresh platform), or another node's view of one. */
async function open(prefix = `t${++n}`): Promise<RedisDeploymentStore> {
  const store = await RedisDeploymentStore.open({ url: redis.url, prefix });
  opened.push(store);
  return store;
}

function version(worker: string, code = `export default {}; // ${++n}`, extra: Partial<NewVersion> = {}): NewVersion {
  return {
    id: `${worker}-${++n}`,
    worker,
    hash: `hash-${n}`,
    createdAt: 1_700_000_000_000 + n,
    size: code.length,
    main: 'index.js',
    modules: [
      { name: 'index.js', type: 'esm', code },
      { name: 'lib/x.js', type: 'esm', code: 'export const x = 1;' },
    ],
    bindings: { A: { type: 'plain_text', text: 'a' }, S: { type: 'secret_text', text: 's' } },
    routes: null,
    crons: ['* * * * *'],
    limits: { cpuMs: 10 },
    compatibilityDate: '2025-01-01',
    compatibilityFlags: ['nodejs_compat'],
    ...extra,
  };
}

describe.skipIf(!redisBinary)('RedisDeploymentStore', () => {
  it('stores versions, numbered per worker, newest first, with their code, bindings and crons', async () => {
    const store = await open();
    const v1 = await store.publish(version('a'));
    const v2 = await store.publish(version('a'));
    const b1 = await store.publish(version('b'));
    expect([v1.number, v2.number, b1.number]).toEqual([1, 2, 1]);
    expect(v1.modules).toEqual([
      { name: 'index.js', type: 'esm', size: expect.any(Number) },
      { name: 'lib/x.js', type: 'esm', size: 19 },
    ]);
    expect((await store.getWorker('a'))?.currentVersion).toBe(v2.id);
    expect((await store.listVersions('a')).map((v) => v.id)).toEqual([v2.id, v1.id]);
    expect(await store.getVersion('a', v1.id)).toEqual(v1);
    expect((await store.getVersion('a', v1.id))?.bindings.S).toEqual({ type: 'secret_text', text: 's' });
    expect((await store.getVersion('a', v1.id))?.compatibilityFlags).toEqual(['nodejs_compat']);
    expect(await store.getVersion('b', v1.id)).toBeNull();
    expect((await store.getModules(v1.id)).map((m) => m.name)).toEqual(['index.js', 'lib/x.js']);
    expect((await store.listWorkers()).map((w) => w.name)).toEqual(['a', 'b']);
  });

  it('activates an existing version only', async () => {
    const store = await open();
    const v1 = await store.publish(version('a'));
    await store.publish(version('a'));
    await store.activate('a', v1.id);
    expect((await store.getWorker('a'))?.currentVersion).toBe(v1.id);
    await expect(store.activate('a', 'nope')).rejects.toThrow(/has no version "nope"/);
    const b = await store.publish(version('b'));
    await expect(store.activate('a', b.id)).rejects.toThrow();
  });

  it('claims routes atomically: a conflict stores nothing, another account is told nothing', async () => {
    const store = await open();
    await store.publish(version('a'), ['a.com/*', 'shared.com/*']);
    const error = await store.publish(version('b'), ['b.com/*', 'shared.com/*']).catch((e) => e);
    expect(error).toBeInstanceOf(RouteConflictError);
    expect(error).toMatchObject({ pattern: 'shared.com/*', owner: 'a' });
    expect(await store.getWorker('b')).toBeNull();
    expect(await store.listVersions('b')).toEqual([]);
    expect(await store.listRoutes()).toEqual([
      { pattern: 'a.com/*', worker: 'a', account: 'default' },
      { pattern: 'shared.com/*', worker: 'a', account: 'default' },
    ]);
    const before = await store.publish(version('b'), ['b.com/*']);
    await expect(store.setRoutes('b', ['b2.com/*', 'a.com/*'])).rejects.toBeInstanceOf(RouteConflictError);
    expect((await store.listRoutes()).filter((r) => r.worker === 'b')).toEqual([{ pattern: 'b.com/*', worker: 'b', account: 'default' }]);
    await store.publish(version('b'));
    expect((await store.listRoutes()).filter((r) => r.worker === 'b')).toEqual([{ pattern: 'b.com/*', worker: 'b', account: 'default' }]);
    expect((await store.listVersions('b'))[1].id).toBe(before.id);

    // Another account: a host that overlaps is refused without naming the owner; a name is owned.
    const other = await store.publish(version('c'), ['a.com/other/*'], 'acme').catch((e) => e);
    expect(other).toBeInstanceOf(RouteConflictError);
    expect(other.owner).toBeNull();
    await expect(store.publish(version('a'), undefined, 'acme')).rejects.toBeInstanceOf(WorkerOwnedError);
  });

  it('keeps code cache per version, module and V8, and a snapshot, and forgets them with the worker', async () => {
    const store = await open();
    const v = await store.publish(version('a'), ['a.com/*']);
    await store.putCodeCache(v.id, { modules: new Map([['index.js', Buffer.from([1])], ['lib/x.js', Buffer.from([2])]]), afterRun: true });
    expect(await store.getCodeCache(v.id)).toEqual({ modules: new Map([['index.js', Buffer.from([1])], ['lib/x.js', Buffer.from([2])]]), afterRun: true });
    await store.putCodeCache(v.id, { modules: new Map([['lib/x.js', Buffer.from([3])]]), afterRun: false });
    expect(await store.getCodeCache(v.id)).toEqual({ modules: new Map([['index.js', Buffer.from([1])], ['lib/x.js', Buffer.from([3])]]), afterRun: false });
    await store.putCodeCache('gone', { modules: new Map([['index.js', Buffer.from([9])]]), afterRun: false });
    expect((await store.getCodeCache('gone')).modules.size).toBe(0);
    await store.putDeploymentSnapshot(v.id, { platform: 'p', data: Buffer.from([4, 5]), sha256: 'h', handlers: 'fetch' });
    expect(await store.getDeploymentSnapshot(v.id)).toEqual({ platform: 'p', data: Buffer.from([4, 5]), sha256: 'h', handlers: 'fetch' });
    await store.putDeploymentSnapshot(v.id, { platform: 'p', refused: 'too big' });
    expect(await store.getDeploymentSnapshot(v.id)).toEqual({ platform: 'p', refused: 'too big' });

    expect(await store.deleteWorker('a')).toBe(true);
    expect(await store.deleteWorker('a')).toBe(false);
    expect(await store.getModules(v.id)).toEqual([]);
    expect((await store.getCodeCache(v.id)).modules.size).toBe(0);
    expect(await store.getDeploymentSnapshot(v.id)).toBeNull();
    expect(await store.listRoutes()).toEqual([]);
    expect((await store.publish(version('a'))).number).toBe(1);
  });

  it('accounts and tokens', async () => {
    const store = await open();
    expect((await store.listAccounts()).map((a) => a.name)).toEqual(['default']);
    await store.createAccount({ id: 'acc-1', name: 'acme', createdAt: 1 });
    await expect(store.createAccount({ id: 'acc-2', name: 'acme', createdAt: 2 })).rejects.toBeInstanceOf(AccountExistsError);
    expect(await store.getAccount('acme')).toEqual({ id: 'acc-1', name: 'acme', createdAt: 1 });
    expect(await store.getAccount('acc-1')).toEqual({ id: 'acc-1', name: 'acme', createdAt: 1 });
    await store.createToken({ id: 't1', account: 'acc-1', hash: 'h1', label: null, createdAt: 5 });
    expect(await store.findToken('h1')).toMatchObject({ id: 't1', account: 'acc-1' });
    expect((await store.listTokens('acc-1')).map((t) => t.id)).toEqual(['t1']);
    expect(await store.deleteToken('t1')).toBe(true);
    expect(await store.findToken('h1')).toBeNull();
    expect(await store.deleteToken('t1')).toBe(false);
  });

  it('two nodes publishing at once: every write lands, numbers are never reused, each sees the other', async () => {
    const prefix = `t${++n}`;
    const [one, two] = [await open(prefix), await open(prefix)];
    const published = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).publish(version('busy'))));
    expect(published.map((v) => v.number).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect((await one.listVersions('busy')).length).toBe(20);
    expect((await two.getWorker('busy'))?.currentVersion).toBe((await one.getWorker('busy'))?.currentVersion);
    // Route claims race too: exactly one of two workers gets a contested pattern.
    const claims = await Promise.allSettled([one.publish(version('x'), ['race.com/*']), two.publish(version('y'), ['race.com/*'])]);
    expect(claims.filter((c) => c.status === 'fulfilled').length).toBe(1);
    expect((await two.listRoutes()).filter((r) => r.pattern === 'race.com/*').length).toBe(1);
  });

  it('Redis down: reads and writes fail at once with StoreUnavailableError naming Redis; back up, they work', async () => {
    const store = await open();
    await store.publish(version('a'));
    await redis.stop();
    try {
      const error = await store.publish(version('a')).catch((e) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/);
      await expect(store.listWorkers()).rejects.toBeInstanceOf(StoreUnavailableError);
      // The client learns of the closed socket as an event, which can trail the first failed call.
      for (let i = 0; i < 50 && store.connected; i++) await new Promise((r) => setTimeout(r, 20));
      expect(store.connected).toBe(false);
    } finally {
      await redis.start();
    }
    // ioredis reconnects by itself (backoff up to 1 s).
    let published = null;
    for (let i = 0; i < 50 && !published; i++) {
      published = await store.publish(version('a')).catch(() => null);
      if (!published) await new Promise((r) => setTimeout(r, 100));
    }
    expect(published?.number).toBe(2);
  }, 30_000);

  it('start-up fails naming Redis when it cannot be reached', async () => {
    const error = await RedisDeploymentStore.open({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 500 }).catch((e) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.message).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
  });
});
