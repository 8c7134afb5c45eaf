// Isolates are born from the V8 snapshot and taken from a ready pool (issue: performance).
import { describe, expect, it, vi } from 'vitest';
import ivm from 'isolated-vm';
import { captureLogger } from '../helpers/server.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { isolateSourceFromSnapshotBytes, loadIsolateSource, readManifest } from '../../src/runtime/isolate-source.js';
import { IsolatePool } from '../../src/runtime/pool.js';
import { ReadyIsolate } from '../../src/runtime/ready-isolate.js';
import { singleScriptWorker } from '../../src/model/worker-definition.js';
import { packageRoot, sandboxManifestPath, snapshotBuilderPath } from '../../src/runtime/paths.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GET = { method: 'GET', url: 'http://x.test/', headers: [] as [string, string][], body: null };

describe('snapshot', () => {
  it('gives isolates the whole Web platform without running the prelude again', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    expect(source.kind).toBe('snapshot');
    const pool = new IsolatePool(source, { min: 3, max: 3 });
    await pool.fill();
    const isolates = [await pool.take(128), await pool.take(128), await pool.take(128)];
    // Every isolate reports the same prelude time: the snapshot's build, not its own birth.
    const times = new Set(isolates.map((i) => i.preludeEvaluatedAt));
    expect(times.size).toBe(1);
    expect([...times][0]).toBeLessThan(isolates[0].createdAt);
    // (the boot hook deletes itself once the host has booted the isolate)
    const expected = source.manifest.globals.filter((n) => n !== '__cinder_boot');
    expect(expected.length).toBeGreaterThan(5);
    const missing = isolates[0].context.evalSync(
      `JSON.stringify(${JSON.stringify(expected)}.filter((n) => typeof globalThis[n] === 'undefined'))`,
    );
    expect(missing).toBe('[]');
    for (const i of isolates) i.dispose('test');
    pool.close();
  });

  it('without a snapshot each isolate runs the prelude itself', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger, snapshot: false });
    expect(source.kind).toBe('code-cache');
    const pool = new IsolatePool(source, { min: 0, max: 0, enabled: false });
    const a = await pool.take(128);
    await new Promise((r) => setTimeout(r, 5));
    const b = await pool.take(128);
    expect(b.preludeEvaluatedAt).toBeGreaterThan(a.preludeEvaluatedAt);
    a.dispose('test');
    b.dispose('test');
  });

  it('falls back to code cache, with a warning, when a snapshot fails its self-test', async () => {
    const { logger, logs } = captureLogger();
    // A valid snapshot that lacks the sandbox's globals (as a broken build would).
    const bogus = Buffer.from(ivm.Isolate.createSnapshot([{ code: 'globalThis.somethingElse = 1;' }]).copy());
    const source = await isolateSourceFromSnapshotBytes(bogus, readManifest(), logger);
    expect(source.kind).toBe('code-cache');
    await new Promise((r) => setTimeout(r, 20));
    expect(logs.some((l) => l.level === 40 && /self-test/.test(String(l.msg)))).toBe(true);
    const runtime = await Runtime.create({ logger, isolateSource: source, pool: { min: 1 } });
    runtime.deploy(singleScriptWorker('w', `export default { fetch() { return new Response(typeof Headers + ' ' + typeof URL) } }`));
    const res = await runtime.fetch('w', GET);
    expect(res.status).toBe(200);
    expect(res.body).toBe('function function');
    runtime.close();
  });
});

// A sandbox change whose top level keeps state that a snapshot freezes: a value drawn from
// Math.random while the bundle first runs. Every isolate born from the snapshot shares the
// snapshot's draw, so btoa answers differently than in an isolate that ran the bundle itself, and
// the self-test must refuse it.
const SCRAMBLED_SNIPPET = `;{const seed=Math.random();const real=globalThis.btoa;
globalThis.btoa=(s)=>real(s)+seed}`;
const sandboxCode = () => readFileSync(join(packageRoot, 'dist', 'sandbox.js'), 'utf8');

describe('snapshot self-test against a fresh isolate', () => {
  it('refuses, in the server, a snapshot whose Web platform answers differently, and falls back to code cache', async () => {
    const { logger, logs } = captureLogger();
    const snapshot = Buffer.from(ivm.Isolate.createSnapshot([{ code: sandboxCode() + SCRAMBLED_SNIPPET, filename: 'cinder:sandbox.js' }]).copy());
    const source = await isolateSourceFromSnapshotBytes(snapshot, readManifest(), logger);
    expect(source.kind).toBe('code-cache');
    const warning = logs.find((l) => l.level === 40 && /self-test/.test(String(l.msg)));
    expect(JSON.stringify(warning?.problems)).toMatch(/^\["base64: /);
    // the code-cache isolates answer as the real sandbox does
    const runtime = await Runtime.create({ logger, isolateSource: source, pool: { min: 1 } });
    runtime.deploy(singleScriptWorker('w', `export default { fetch() { return new Response(btoa('hi/+?')) } }`));
    expect((await runtime.fetch('w', GET)).body).toBe('aGkvKz8=');
    runtime.close();
  });

  it('passes the sandbox as built', async () => {
    const snapshot = Buffer.from(ivm.Isolate.createSnapshot([{ code: sandboxCode(), filename: 'cinder:sandbox.js' }]).copy());
    const source = await isolateSourceFromSnapshotBytes(snapshot, readManifest());
    expect(source.kind).toBe('snapshot');
  });

  it('makes the builder (child process) exit with the reason and write nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cinder-snap-'));
    const bundle = join(dir, 'sandbox.js');
    writeFileSync(bundle, sandboxCode() + SCRAMBLED_SNIPPET);
    const out = join(dir, 'snapshot.bin');
    const run = spawnSync(process.execPath, ['--no-node-snapshot', snapshotBuilderPath, bundle, sandboxManifestPath, out], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/snapshot self-test failed: base64: /);
    expect(existsSync(out) || existsSync(`${out}.sha256`)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('isolated-vm as patched at install (scripts/patch-isolated-vm.mjs)', () => {
  it('keeps one-character strings and one-letter globals held in a snapshot (V8 11.3 scrambled them)', () => {
    const snapshot = ivm.Isolate.createSnapshot([{ code: `const marks = ['a', 'b', 'c', 'x', 'Z', '/']; globalThis.s = 'q'; const o = { k: 'v' }; globalThis.held = () => JSON.stringify([marks, o, s]);` }]);
    const isolate = new ivm.Isolate({ memoryLimit: 32, snapshot });
    try {
      expect(isolate.createContextSync().evalSync('held()')).toBe('[["a","b","c","x","Z","/"],{"k":"v"},"q"]');
    } finally {
      isolate.dispose();
    }
  });

  it('refuses, by name, an addon built at another patch level', async () => {
    const { builtPatchLevel, expectedPatchLevel, patchLevelProblem } = await import('../../src/runtime/ivm.js');
    expect(builtPatchLevel()).toBe(expectedPatchLevel);
    expect(patchLevelProblem(expectedPatchLevel)).toBeNull();
    expect(patchLevelProblem(undefined)).toMatch(/not built with Cinder's patches.*Run "npm install"/);
    expect(patchLevelProblem('ivm7-cputime-2')).toMatch(/built at patch level "ivm7-cputime-2"/);
  });

  it('builds an isolate from the snapshot on its own threads (spawnIsolate), with the same limits', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    if (source.kind !== 'snapshot') throw new Error('expected a snapshot');
    const helper = new ivm.Isolate({ memoryLimit: 8 }) as ivm.Isolate & { spawnIsolate(options: ivm.IsolateOptions): Promise<ivm.Isolate> };
    expect(typeof helper.spawnIsolate).toBe('function');
    const isolate = await helper.spawnIsolate({ memoryLimit: 16, snapshot: source.snapshot });
    const context = await isolate.createContext();
    expect(await context.eval('typeof Request + " " + new URL("https://a.example/b?c").pathname')).toBe('function /b');
    // The memory limit holds in a spawned isolate as in one made by the constructor.
    await expect(context.eval('const keep = []; for (;;) keep.push(new Array(1e6).fill(1))', { timeout: 10_000 })).rejects.toThrow(/memory/i);
    await expect(helper.spawnIsolate({ inspector: true })).rejects.toThrow(/inspector/);
    if (!isolate.isDisposed) isolate.dispose();
    helper.dispose();
  });
});

describe('one context per snapshot isolate (patch 7)', () => {
  it("hands out the prelude's context as the first context instead of deserializing a second one", async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    if (source.kind !== 'snapshot') throw new Error('expected a snapshot');
    const isolate = new ivm.Isolate({ memoryLimit: 32, snapshot: source.snapshot });
    const used = () => isolate.getHeapStatisticsSync().used_heap_size;
    const before = used();
    const first = isolate.createContextSync();
    const afterFirst = used();
    const second = isolate.createContextSync();
    const afterSecond = used();
    // The first context was already there (the isolate's own); a second is a real new one.
    expect(afterFirst - before).toBeLessThan(64 * 1024);
    expect(afterSecond - afterFirst).toBeGreaterThan(256 * 1024);
    // Each has the whole Web platform and its own globals.
    first.evalSync('globalThis.mark = "first"');
    expect(first.evalSync('typeof Request + " " + mark')).toBe('function first');
    expect(second.evalSync('typeof Request + " " + typeof mark')).toBe('function undefined');
    // What isolated-vm copies in still lands in the guest's realm.
    const realm = first.evalSync('(function (value) { return value instanceof Object && Array.isArray(value.list) && value.list instanceof Array; })', { reference: true });
    expect(realm.applySync(undefined, [{ list: [1, 2] }], { arguments: { copy: true } })).toBe(true);
    isolate.dispose();
  });
});

describe('worker code cache for ES modules (patch 5)', () => {
  const code = 'export const answer = [1, 2, 3].map((n) => n * 14).reduce((a, b) => a + b, 0);';

  it('is consumed by V8: a valid cache is accepted and a damaged one is refused', () => {
    // A fresh isolate per compile: V8's in-isolate compilation cache would otherwise answer first.
    const compile = (options: ivm.ScriptOrigin & ivm.CachedDataOptions) => {
      const isolate = new ivm.Isolate({ memoryLimit: 16 });
      const module = isolate.compileModuleSync(code, options) as ivm.Module & { cachedData?: ivm.ExternalCopy<ArrayBuffer>; cachedDataRejected?: boolean };
      return { isolate, module };
    };
    const first = compile({ produceCachedData: true });
    const cache = first.module.cachedData!.copy();
    first.isolate.dispose();

    const reused = compile({ cachedData: new ivm.ExternalCopy(cache) });
    expect(reused.module.cachedDataRejected).toBe(false);
    reused.module.instantiateSync(reused.isolate.createContextSync(), () => {
      throw new Error('no imports');
    });
    reused.module.evaluateSync();
    expect(reused.module.namespace.getSync('answer')).toBe(84);
    reused.isolate.dispose();

    // Unpatched, isolated-vm never hands the cache to V8, so even garbage "is accepted".
    const refused = compile({ cachedData: new ivm.ExternalCopy(new Uint8Array(cache.byteLength).fill(0x5a).buffer) });
    expect(refused.module.cachedDataRejected).toBe(true);
    refused.isolate.dispose();
  });

  const worker = `${code}\nfunction greet(name) { return 'answer ' + name + ' ' + answer; }\nexport default { fetch(request) { return new Response(greet(new URL(request.url).hostname)); } };`;
  const cachedWorker = () => ({ ...singleScriptWorker('cached', worker), codeCache: new Map<string, Buffer>() });

  it('a damaged entry is replaced in the same load, and the worker still serves', async () => {
    const runtime = await Runtime.create({ logger: captureLogger().logger, pool: { min: 1 } });
    const def = cachedWorker();
    const updated = vi.fn();
    runtime.deploy({ ...def, onCodeCacheUpdated: updated });
    expect((await runtime.fetch('cached', GET)).body).toBe('answer x.test 84');
    const damaged = Buffer.alloc(def.codeCache.get(def.main)!.length, 0x5a);
    def.codeCache.set(def.main, damaged);
    runtime.evict('cached', 'test');
    expect((await runtime.fetch('cached', GET)).body).toBe('answer x.test 84');
    expect(updated.mock.calls.filter(([, reason]) => reason === 'rejected')).toHaveLength(1);
    expect(def.codeCache.get(def.main)!.equals(damaged)).toBe(false);
    expect(def.codeCache.get(def.main)!.length).toBeGreaterThan(0);
    runtime.close();
  });

  it('is made again after the first request, holding the functions it compiled, once per version (patch 6)', async () => {
    const { logger, logs } = captureLogger();
    const runtime = await Runtime.create({ logger, pool: { min: 1 } });
    const def = cachedWorker();
    const updated = vi.fn();
    runtime.deploy({ ...def, onCodeCacheUpdated: updated });
    expect((await runtime.fetch('cached', GET)).body).toBe('answer x.test 84');
    const atCompile = def.codeCache.get(def.main)!;
    await vi.waitFor(() => expect(updated).toHaveBeenCalledWith(def.codeCache, 'after-run'));
    const afterRun = def.codeCache.get(def.main)!;
    // greet and fetch were compiled lazily by the first request; now their bytecode is in the cache.
    expect(afterRun.length).toBeGreaterThan(atCompile.length);

    // The next isolate takes that cache (a rejected one would be replaced and reported) and serves
    // from it; no isolate makes it again.
    runtime.evict('cached', 'test');
    expect((await runtime.fetch('cached', { ...GET, url: 'http://y.test/' })).body).toBe('answer y.test 84');
    await new Promise((r) => setTimeout(r, 20));
    expect(updated).toHaveBeenCalledTimes(1);
    expect(def.codeCache.get(def.main)).toBe(afterRun);
    expect(logs.filter((l) => (l.level as number) >= 40)).toEqual([]);
    runtime.close();
  });
});

describe('ready pool', () => {
  it('refills in the background after takes and never exceeds its cap', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    const pool = new IsolatePool(source, { min: 2, max: 5 });
    await pool.fill();
    expect(pool.stats().ready).toBe(2);
    const taken = await Promise.all(Array.from({ length: 20 }, () => pool.take(128)));
    // 20 takes in a second: the target rises with the rate, but is capped.
    expect(pool.target()).toBe(5);
    for (let i = 0; i < 500 && pool.stats().ready < 5; i++) await new Promise((r) => setTimeout(r, 10));
    expect(pool.stats().ready).toBe(5);
    await new Promise((r) => setTimeout(r, 100));
    expect(pool.stats().ready).toBe(5);
    expect(pool.stats().bytes).toBeGreaterThan(0);
    for (const i of taken) i.dispose('test');
    pool.close();
  });

  it('serves a cold start from a pooled isolate', async () => {
    const { logger } = captureLogger();
    const runtime = await Runtime.create({ logger, pool: { min: 2 } });
    const before = runtime.poolStats();
    expect(before.ready).toBe(2);
    runtime.deploy(singleScriptWorker('w', `export default { fetch() { return new Response('ok') } }`));
    const res = await runtime.fetch('w', GET);
    expect(res.body).toBe('ok');
    expect(res.coldMs).not.toBeNull();
    const after = runtime.poolStats();
    expect(after.taken).toBe(1);
    expect(after.misses).toBe(0);
    runtime.close();
  });

  it('waits for a quiet moment to refill, so isolate builds do not stall requests in flight', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    let busy = true;
    const pool = new IsolatePool(source, { min: 2, max: 2, isBusy: () => busy, maxRefillDeferMs: 60_000 });
    // Nothing is built while requests are in flight, not even the initial fill.
    await new Promise((r) => setTimeout(r, 100));
    expect(pool.stats().ready).toBe(0);
    busy = false;
    for (let i = 0; i < 500 && pool.stats().ready < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(pool.stats().ready).toBe(2);
    busy = true;
    const taken = await pool.take(128);
    await new Promise((r) => setTimeout(r, 100));
    expect(pool.stats().ready).toBe(1);
    busy = false;
    for (let i = 0; i < 500 && pool.stats().ready < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(pool.stats().ready).toBe(2);
    taken.dispose('test');
    pool.close();
  });

  it('still refills after its longest wait when the server is never quiet', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    const pool = new IsolatePool(source, { min: 1, max: 1, isBusy: () => true, maxRefillDeferMs: 50 });
    for (let i = 0; i < 500 && pool.stats().ready < 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(pool.stats().ready).toBe(1);
    pool.close();
  });
  it('never hands out an isolate whose warm-up failed, and stops warming after repeated failures', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    const warm = vi.spyOn(ReadyIsolate.prototype, 'warm').mockResolvedValue(false);
    const disposed: string[] = [];
    const dispose = ReadyIsolate.prototype.dispose;
    const spyDispose = vi.spyOn(ReadyIsolate.prototype, 'dispose').mockImplementation(function (this: ReadyIsolate, reason: string) {
      disposed.push(reason);
      return dispose.call(this, reason);
    });
    try {
      const pool = new IsolatePool(source, { min: 2, max: 2 });
      await pool.fill();
      expect(pool.stats().ready).toBe(2);
      // Three isolates failed their warm-up and were thrown away; then the pool gave up warming.
      expect(warm).toHaveBeenCalledTimes(3);
      expect(disposed.filter((r) => r === 'warm-up failed')).toHaveLength(3);
      const isolate = await pool.take(128);
      expect(isolate.isDisposed).toBe(false);
      isolate.dispose('test');
      pool.close();
    } finally {
      warm.mockRestore();
      spyDispose.mockRestore();
    }
  });
});

describe('warmed isolates', () => {
  // The pool runs a built-in worker through every pooled isolate's dispatch path before handing
  // it out (sandbox/dispatch.ts warmUp). A worker must not be able to tell.
  const PROBE = `
    const seen = { globals: Object.getOwnPropertyNames(globalThis).sort().join(','), listeners: 0 };
    export default {
      async fetch(request, env) {
        return Response.json({ ...seen, env: Object.keys(env), url: request.url });
      },
    };`;

  it('gives a worker the same globals and an empty env, as an unwarmed isolate does', async () => {
    const { logger } = captureLogger();
    const pooled = await Runtime.create({ logger, pool: { min: 1, max: 1 } });
    const unpooled = await Runtime.create({ logger, pool: { enabled: false } });
    expect(pooled.poolStats().ready).toBe(1);
    for (const runtime of [pooled, unpooled]) runtime.deploy(singleScriptWorker('probe', PROBE));
    const [a, b] = await Promise.all([pooled.fetch('probe', GET), unpooled.fetch('probe', GET)]);
    expect(pooled.poolStats()).toMatchObject({ taken: 1, misses: 0 });
    expect(a.status).toBe(200);
    const warmed = JSON.parse(a.body as string);
    expect(warmed).toEqual(JSON.parse(b.body as string));
    expect(warmed.env).toEqual([]);
    expect(warmed.url).toBe('http://x.test/');
    pooled.close();
    unpooled.close();
  });

  it('serves service-worker scripts, whose listeners the warm-up must not have touched', async () => {
    const { logger } = captureLogger();
    const runtime = await Runtime.create({ logger, pool: { min: 1, max: 1 } });
    runtime.deploy(
      singleScriptWorker('sw', `addEventListener('fetch', (event) => event.respondWith(new Response('sw ' + new URL(event.request.url).pathname)));`),
    );
    const res = await runtime.fetch('sw', { ...GET, url: 'http://x.test/here' });
    expect(runtime.poolStats()).toMatchObject({ taken: 1, misses: 0 });
    expect(res.body).toBe('sw /here');
    runtime.close();
  });

  it('reports a module without a fetch handler as such, not as the warm-up handler', async () => {
    const { logger } = captureLogger();
    const runtime = await Runtime.create({ logger, pool: { min: 1, max: 1 } });
    runtime.deploy(singleScriptWorker('nofetch', `export default { scheduled() {} }`));
    const res = await runtime.fetch('nofetch', GET);
    expect(res.status).toBe(500);
    expect(res.exception?.message).toMatch(/does not export a fetch\(\) function/);
    runtime.close();
  });
});
