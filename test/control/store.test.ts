// The SQLite deployment store on its own: versions, atomic route claims, code cache, reopen.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { RouteConflictError, SqliteDeploymentStore, type NewVersion } from '../../src/store/index.js';
import { tempDataDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function open(dir = tempDataDir()) {
  dirs.push(dir);
  return { dir, store: new SqliteDeploymentStore(join(dir, 'deployments.sqlite')) };
}

let n = 0;
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
    compatibilityFlags: [],
    ...extra,
  };
}

describe('SqliteDeploymentStore', () => {
  it('stores versions, numbered per worker, newest first, with their code', async () => {
    const { store } = open();
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
    expect(await store.getVersion('b', v1.id)).toBeNull();
    expect((await store.getModules(v1.id)).map((m) => m.name)).toEqual(['index.js', 'lib/x.js']);
    expect((await store.listWorkers()).map((w) => w.name)).toEqual(['a', 'b']);
    await store.close();
  });

  it('activates an existing version only', async () => {
    const { store } = open();
    const v1 = await store.publish(version('a'));
    await store.publish(version('a'));
    await store.activate('a', v1.id);
    expect((await store.getWorker('a'))?.currentVersion).toBe(v1.id);
    await expect(store.activate('a', 'nope')).rejects.toThrow(/has no version "nope"/);
    const b = await store.publish(version('b'));
    await expect(store.activate('a', b.id)).rejects.toThrow();
    await store.close();
  });

  it('claims routes atomically: a conflict stores nothing', async () => {
    const { store } = open();
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
    // publishing without routes leaves them alone
    await store.publish(version('b'));
    expect((await store.listRoutes()).filter((r) => r.worker === 'b')).toEqual([{ pattern: 'b.com/*', worker: 'b', account: 'default' }]);
    expect((await store.listVersions('b'))[1].id).toBe(before.id);
    await store.close();
  });

  it('keeps code cache per version and V8, and forgets it with the worker', async () => {
    const { store } = open();
    const v = await store.publish(version('a'));
    await store.putCodeCache(v.id, { modules: new Map([['index.js', Buffer.from([1, 2, 3])]]), afterRun: false });
    expect(await store.getCodeCache(v.id)).toEqual({ modules: new Map([['index.js', Buffer.from([1, 2, 3])]]), afterRun: false });
    // a cache for a version that no longer exists is not kept
    await store.putCodeCache('gone', { modules: new Map([['index.js', Buffer.from([9])]]), afterRun: false });
    expect(await store.getCodeCache('gone')).toEqual({ modules: new Map(), afterRun: false });
    // a cache made by another V8 is not handed out
    (store as unknown as { v8: string }).v8 = '0.0.0';
    expect((await store.getCodeCache(v.id)).modules.size).toBe(0);
    await store.close();
  });

  it('says whether a code cache was made after a first request, for every module or none', async () => {
    const { store } = open();
    const v = await store.publish(version('a'));
    await store.putCodeCache(v.id, { modules: new Map([['index.js', Buffer.from([1])], ['lib/x.js', Buffer.from([2])]]), afterRun: true });
    expect(await store.getCodeCache(v.id)).toEqual({ modules: new Map([['index.js', Buffer.from([1])], ['lib/x.js', Buffer.from([2])]]), afterRun: true });
    // one entry replaced by a compile-time one: the cache as a whole is no longer the after-run kind
    await store.putCodeCache(v.id, { modules: new Map([['lib/x.js', Buffer.from([3])]]), afterRun: false });
    expect(await store.getCodeCache(v.id)).toEqual({ modules: new Map([['index.js', Buffer.from([1])], ['lib/x.js', Buffer.from([3])]]), afterRun: false });
    await store.close();
  });

  it('opens a schema-1 file (no after-run marker) and keeps its code cache as compile-time', async () => {
    const { dir, store } = open();
    const v = await store.publish(version('a'));
    await store.putCodeCache(v.id, { modules: new Map([['index.js', Buffer.from([7])]]), afterRun: true });
    await store.close();
    // Turn the file back into what a schema-1 server wrote: no after_run column.
    const file = join(dir, 'deployments.sqlite');
    const db = new Database(file);
    db.exec('ALTER TABLE code_cache DROP COLUMN after_run');
    db.pragma('user_version = 1');
    db.close();

    const again = new SqliteDeploymentStore(file);
    expect(await again.getVersion('a', v.id)).toEqual(v);
    expect(await again.getCodeCache(v.id)).toEqual({ modules: new Map([['index.js', Buffer.from([7])]]), afterRun: false });
    await again.putCodeCache(v.id, { modules: new Map([['index.js', Buffer.from([8])]]), afterRun: true });
    expect(await again.getCodeCache(v.id)).toEqual({ modules: new Map([['index.js', Buffer.from([8])]]), afterRun: true });
    await again.close();
    const reopened = new Database(file, { readonly: true });
    expect(reopened.pragma('user_version', { simple: true })).toBe(5);
    reopened.close();
  });

  it('deletes a worker with everything it had', async () => {
    const { store } = open();
    const v = await store.publish(version('a'), ['a.com/*']);
    await store.publish(version('b'), ['b.com/*']);
    await store.putCodeCache(v.id, { modules: new Map([['index.js', Buffer.from([1])]]), afterRun: false });
    expect(await store.deleteWorker('a')).toBe(true);
    expect(await store.deleteWorker('a')).toBe(false);
    expect(await store.getWorker('a')).toBeNull();
    expect(await store.listVersions('a')).toEqual([]);
    expect(await store.getModules(v.id)).toEqual([]);
    expect((await store.getCodeCache(v.id)).modules.size).toBe(0);
    expect(await store.listRoutes()).toEqual([{ pattern: 'b.com/*', worker: 'b', account: 'default' }]);
    // a new worker of the same name starts again at 1
    expect((await store.publish(version('a'))).number).toBe(1);
    await store.close();
  });

  it('is all still there after reopening the file, in WAL mode', async () => {
    const { dir, store } = open();
    const v1 = await store.publish(version('a'), ['a.com/*']);
    const v2 = await store.publish(version('a'));
    await store.activate('a', v1.id);
    expect(existsSync(join(dir, 'deployments.sqlite-wal'))).toBe(true);
    await store.close();

    const again = new SqliteDeploymentStore(join(dir, 'deployments.sqlite'));
    expect((await again.getWorker('a'))?.currentVersion).toBe(v1.id);
    expect((await again.listVersions('a')).map((v) => v.id)).toEqual([v2.id, v1.id]);
    expect(await again.getVersion('a', v2.id)).toEqual(v2);
    expect(await again.listRoutes()).toEqual([{ pattern: 'a.com/*', worker: 'a', account: 'default' }]);
    await again.close();
  });
});
