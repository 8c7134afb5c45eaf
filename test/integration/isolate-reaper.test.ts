// Retired isolates are freed between requests, not inside one (src/runtime/isolate-reaper.ts).
import { describe, expect, it } from 'vitest';
import ivm from 'isolated-vm';
import { captureLogger } from '../helpers/server.js';
import { IsolateReaper } from '../../src/runtime/isolate-reaper.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { singleScriptWorker } from '../../src/model/worker-definition.js';
import { Metrics } from '../../src/observability/metrics.js';

const GET = (host: string) => ({ method: 'GET', url: `http://${host}/`, headers: [] as [string, string][], body: null });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000; // far past what it takes here: CI is slower and loaded
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

const isolates = (n: number) => Array.from({ length: n }, () => new ivm.Isolate({ memoryLimit: 16 }));

describe('IsolateReaper', () => {
  it('waits while requests are served and disposes once the server is quiet', async () => {
    let busy = true;
    const reaper = new IsolateReaper({ isBusy: () => busy, maxDeferMs: 60_000 });
    const [isolate] = isolates(1);
    reaper.dispose(isolate);
    expect(reaper.waiting).toBe(1);
    await sleep(30);
    expect(isolate.isDisposed).toBe(false); // still busy, and far from its deadline
    busy = false;
    await until(() => isolate.isDisposed, 'the isolate to be disposed');
    expect(reaper.waiting).toBe(0);
    expect(reaper.disposed).toBe(1);
  });

  it('disposes anyway once an isolate has waited maxDeferMs on a server that is never quiet', async () => {
    const reaper = new IsolateReaper({ isBusy: () => true, maxDeferMs: 20 });
    const [isolate] = isolates(1);
    reaper.dispose(isolate);
    await until(() => isolate.isDisposed, 'the deadline to pass');
  });

  it('stops waiting when too many retired isolates hold memory', async () => {
    const reaper = new IsolateReaper({ isBusy: () => true, maxDeferMs: 60_000, maxPending: 2 });
    const four = isolates(4);
    for (const isolate of four) reaper.dispose(isolate);
    // Down to the bound, the rest wait for a quiet moment that never comes.
    await until(() => reaper.waiting === 2, 'the excess to be disposed');
    expect(four.map((i) => i.isDisposed)).toEqual([true, true, false, false]);
    reaper.close();
    expect(four.every((i) => i.isDisposed)).toBe(true);
  });

  it('disposes everything at once on close, and later isolates directly', () => {
    const reaper = new IsolateReaper({ isBusy: () => true, maxDeferMs: 60_000 });
    const [a, b] = isolates(2);
    reaper.dispose(a);
    reaper.close();
    expect(a.isDisposed).toBe(true);
    reaper.dispose(b);
    expect(b.isDisposed).toBe(true);
    expect(reaper.disposed).toBe(2);
  });

  it('skips an isolate that was disposed elsewhere meanwhile', async () => {
    const reaper = new IsolateReaper({});
    const [isolate] = isolates(1);
    reaper.dispose(isolate);
    isolate.dispose();
    await until(() => reaper.waiting === 0, 'the queue to drain');
    expect(reaper.disposed).toBe(0);
  });
});

describe('the runtime retires isolates through the reaper', () => {
  const HELLO = `export default { fetch() { return new Response('hi') } }`;

  it('an evicted worker ends at once and its V8 isolate is freed after the eviction returns', async () => {
    const { logger } = captureLogger();
    const runtime = await Runtime.create({ logger, pool: { min: 1, max: 2 } });
    const metrics = new Metrics(runtime, { defaultMetrics: false });
    try {
      runtime.deploy(singleScriptWorker('a', HELLO));
      expect((await runtime.fetch('a', GET('a.test'))).body).toBe('hi');
      const [instance] = runtime.instancesOf('a');
      runtime.evict('a');
      expect(instance.ready.isDisposed).toBe(true); // no request can reach it any more
      expect(instance.ready.isolate.isDisposed).toBe(false); // ...but V8 frees it later
      expect(runtime.isolatesAwaitingDispose()).toBe(1);
      expect(await metrics.registry.metrics()).toMatch(/^cinder_isolates_awaiting_dispose 1$/m);
      await until(() => instance.ready.isolate.isDisposed, 'the evicted isolate to be freed');
      expect(runtime.isolatesAwaitingDispose()).toBe(0);
      // The next request cold-starts a new isolate.
      expect((await runtime.fetch('a', GET('a.test'))).body).toBe('hi');
      expect(runtime.instancesOf('a')[0]).not.toBe(instance);
    } finally {
      runtime.close();
    }
  });

  it('a worker evicted for capacity by a cold start is freed after that request', async () => {
    const { logger } = captureLogger();
    const runtime = await Runtime.create({ logger, pool: { min: 1, max: 2 }, maxLiveWorkers: 1 });
    try {
      runtime.deploy(singleScriptWorker('a', HELLO));
      runtime.deploy(singleScriptWorker('b', HELLO.replace('hi', 'hello')));
      await runtime.fetch('a', GET('a.test'));
      const [a] = runtime.instancesOf('a');
      const response = runtime.fetch('b', GET('b.test')); // evicts a to make room
      expect(a.ready.isDisposed).toBe(true);
      expect(a.ready.isolate.isDisposed).toBe(false);
      expect((await response).body).toBe('hello');
      await until(() => a.ready.isolate.isDisposed, 'the evicted isolate to be freed');
      expect(runtime.evictions.capacity).toBe(1);
    } finally {
      runtime.close();
    }
  });

  it('shutdown frees retired isolates that were still waiting', async () => {
    const { logger } = captureLogger();
    const runtime = await Runtime.create({ logger, pool: { min: 1, max: 2 } });
    runtime.deploy(singleScriptWorker('a', HELLO));
    await runtime.fetch('a', GET('a.test'));
    const [instance] = runtime.instancesOf('a');
    runtime.evict('a');
    runtime.close();
    expect(instance.ready.isolate.isDisposed).toBe(true);
  });
});
