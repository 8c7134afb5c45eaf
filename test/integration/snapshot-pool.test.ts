// Isolates are born from the V8 snapshot and taken from a ready pool (issue: performance).
import { describe, expect, it } from 'vitest';
import ivm from 'isolated-vm';
import { captureLogger } from '../helpers/server.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { isolateSourceFromSnapshotBytes, loadIsolateSource, readManifest } from '../../src/runtime/isolate-source.js';
import { IsolatePool } from '../../src/runtime/pool.js';
import { singleScriptWorker } from '../../src/runtime/worker-definition.js';

const GET = { method: 'GET', url: 'http://x.test/', headers: [] as [string, string][], body: null };

describe('snapshot', () => {
  it('gives isolates the whole Web platform without running the prelude again', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    expect(source.kind).toBe('snapshot');
    const pool = new IsolatePool(source, { min: 3, max: 3 });
    await pool.fill();
    const isolates = [pool.take(128), pool.take(128), pool.take(128)];
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
    const a = pool.take(128);
    await new Promise((r) => setTimeout(r, 5));
    const b = pool.take(128);
    expect(b.preludeEvaluatedAt).toBeGreaterThan(a.preludeEvaluatedAt);
    a.dispose('test');
    b.dispose('test');
  });

  it('falls back to code cache, with a warning, when a snapshot fails its self-test', async () => {
    const { logger, logs } = captureLogger();
    // A valid snapshot that lacks the sandbox's globals (as a broken build would).
    const bogus = Buffer.from(ivm.Isolate.createSnapshot([{ code: 'globalThis.somethingElse = 1;' }]).copy());
    const source = isolateSourceFromSnapshotBytes(bogus, readManifest(), logger);
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

describe('ready pool', () => {
  it('refills in the background after takes and never exceeds its cap', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    const pool = new IsolatePool(source, { min: 2, max: 5 });
    await pool.fill();
    expect(pool.stats().ready).toBe(2);
    const taken = [];
    for (let i = 0; i < 20; i++) taken.push(pool.take(128));
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
});
