// The warm and cold hot paths taken apart, in-process (no HTTP): what each stage costs, so the
// runtime owner can see which to take out first. `node --no-node-snapshot bench/hotpath.mjs`
//
// Warm (hello worker, sequential, median of N):
//   crossing floor      async Reference.apply of a no-op guest function (promise + copy)
//   crossing, sync      applySync of the same no-op
//   wire copy in        ExternalCopy of a request's wire form (the host side of the copy)
//   dispatch            entry.dispatchFetch.apply: Request built in the guest, handler, Response
//                       read back and copied out (what WorkerInstance.fetch awaits)
//   runtime.fetch       the whole runtime call (limits, watchdog, metering around dispatch)
// Cold (median of N, each on a fresh pooled isolate; pool refills happen between samples):
//   pool take, WorkerInstance.load (compile with code cache + top level + installWorker, all on
//   isolated-vm's threads), first dispatch on the new isolate, ReadyIsolate.create without its
//   warm-up (what a pool miss waits for, off the main thread), dispose.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ivm from 'isolated-vm';
import { rootDir } from './lib/procs.mjs';
import { summarize, table, fmtMs } from './lib/stats.mjs';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';

const dist = (p) => import(join(rootDir, 'dist', 'src', p));
const { Runtime } = await dist('runtime/runtime.js');
const { singleScriptWorker } = await dist('model/worker-definition.js');
const { WorkerInstance } = await dist('runtime/worker-instance.js');
const { ReadyIsolate } = await dist('runtime/ready-isolate.js');
const { createLogger } = await dist('observability/logger.js');

const argv = process.argv.slice(2);
const N = Number(argv.find((a) => a.startsWith('--n='))?.split('=')[1] ?? 2000);
const NC = Number(argv.find((a) => a.startsWith('--cold='))?.split('=')[1] ?? 100);
const snapshot = !argv.includes('--no-snapshot');

await buildWorkers();
const logger = createLogger({ level: 'warn' });
const runtime = await Runtime.create({ logger, isolateSource: { snapshot } });
const helloDef = singleScriptWorker('hello', readFileSync(join(buildDir, 'hello.mjs'), 'utf8'));
runtime.deploy(helloDef);
const honoDef = singleScriptWorker('hono', readFileSync(join(buildDir, 'hono-app.mjs'), 'utf8'));
for (const m of honoDef.modules) m.type = 'esm';
runtime.deploy(honoDef);
const wire = (host, path) => ({ method: 'GET', url: `http://${host}${path}`, headers: [['host', host], ['user-agent', 'bench'], ['accept', '*/*']], body: null });
const helloReq = wire('hello.bench', '/');

const rows = [['stage', 'p50 µs', 'p90 µs', 'p99 µs']];
const addRow = (name, samplesMs) => {
  const s = summarize(samplesMs.map((x) => x * 1000));
  rows.push([name, fmtMs(s.p50), fmtMs(s.p90), fmtMs(s.p99)]);
};
async function time(fn, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

// --- warm -----------------------------------------------------------------------------------
await runtime.fetch('hello', helloReq);
// The live instance (the runtime keeps a slot per worker: {instance} earlier, {instances} now).
const slot = runtime.slots.peek?.('hello') ?? runtime.slots.get('hello');
const instance = slot.instance ?? slot.instances[0];
const { context, isolate } = instance.ready;
const noop = await context.eval('(function noop(a) { return a; })', { reference: true });
await time(() => noop.apply(undefined, [1], { result: { promise: true, copy: true } }), 200);
addRow('warm: crossing floor (async apply, no-op)', await time(() => noop.apply(undefined, [1], { result: { promise: true, copy: true } }), N));
addRow('warm: crossing, applySync (no-op)', await time(() => noop.applySync(undefined, [1], { result: { copy: true } }), N));
addRow('warm: wire request ExternalCopy (host side)', await time(() => new ivm.ExternalCopy(helloReq).release(), N));
let invocation = 1_000_000;
addRow(
  'warm: dispatchFetch.apply (guest Request->Response, copy out)',
  await time(() => instance.ready.entry.dispatchFetch.apply(undefined, [invocation++, new ivm.ExternalCopy(helloReq).copyInto({ release: true })], { result: { promise: true, copy: true } }), N),
);
addRow(
  'warm: dispatchFetch.applySync + result.promise (same work, main thread)',
  await time(() => instance.ready.entry.dispatchFetch.applySync(undefined, [invocation++, new ivm.ExternalCopy(helloReq).copyInto({ release: true })], { result: { promise: true, copy: true } }), N),
);
addRow('warm: runtime.fetch (hello)', await time(() => runtime.fetch('hello', helloReq), N));
const honoReq = wire('hono.bench', '/api/highlight?lang=javascript');
await runtime.fetch('hono', honoReq);
addRow('warm: runtime.fetch (hono /api/highlight)', await time(() => runtime.fetch('hono', honoReq), Math.ceil(N / 4)));

// --- cold -----------------------------------------------------------------------------------
// Each sample makes its own ReadyIsolate, lets the event loop settle so no pool refill runs inside
// the timed stages, then times load, first dispatch and dispose on it. Samples alternate between
// an isolate made as the pool makes them (ReadyIsolate.create, then warm()) and one made as a pool
// miss does (ReadyIsolate.create without the warm-up, timed), to show what the pool's preparation
// buys. Both are made on isolated-vm's threads.
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
const canWarm = typeof ReadyIsolate.prototype.warm === 'function';
const cold = { take: [], load: [], first: [], firstUnwarmed: [], warm: [], makeReady: [], dispose: [], honoLoad: [], honoFirst: [] };
for (let i = 0; i < NC; i++) {
  await settle();
  let t = performance.now();
  (await runtime.pool.take(128)).dispose('bench'); // a take also schedules a refill; let it run below
  cold.take.push(performance.now() - t);
  for (const [def, req, loadKey, firstKeyWarm] of [[helloDef, helloReq, 'load', 'first'], ...(i % 4 === 0 ? [[honoDef, honoReq, 'honoLoad', 'honoFirst']] : [])]) {
    await settle();
    const warmThis = canWarm && (loadKey !== 'load' || i % 2 === 0);
    let ready;
    if (warmThis) {
      ready = await ReadyIsolate.create(runtime.source, 128);
      t = performance.now();
      await ready.warm();
      if (loadKey === 'load') cold.warm.push(performance.now() - t);
    } else {
      t = performance.now();
      ready = await ReadyIsolate.create(runtime.source, 128);
      if (loadKey === 'load') cold.makeReady.push(performance.now() - t);
    }
    const firstKey = loadKey === 'load' && !warmThis ? 'firstUnwarmed' : firstKeyWarm;
    await settle();
    const inst = new WorkerInstance(def, ready, runtime.host);
    t = performance.now();
    await inst.load();
    cold[loadKey].push(performance.now() - t);
    t = performance.now();
    await inst.fetch(req, `cold-${i}`);
    cold[firstKey].push(performance.now() - t);
    t = performance.now();
    ready.dispose('bench');
    if (loadKey === 'load') cold.dispose.push(performance.now() - t);
  }
}
addRow('cold: pool.take (+ dispose)', cold.take);
addRow('cold: WorkerInstance.load (hello)', cold.load);
addRow(`cold: first dispatch on the new isolate (hello${canWarm ? ', pool-warmed' : ''})`, cold.first);
if (cold.firstUnwarmed.length) addRow('cold: first dispatch on the new isolate (hello, not warmed)', cold.firstUnwarmed);
if (cold.warm.length) addRow('cold: ReadyIsolate.warm() (pool refill, mostly on isolated-vm threads)', cold.warm);
addRow('cold: WorkerInstance.load (hono, ~1.2 MB, code cache)', cold.honoLoad);
addRow('cold: first dispatch on the new isolate (hono)', cold.honoFirst);
addRow(`cold: ReadyIsolate.create, no warm-up (${runtime.source.kind}) = a pool miss, off-thread`, cold.makeReady);
addRow('cold: ReadyIsolate.dispose', cold.dispose);

console.log(`\nhot path stages, in-process, isolate source = ${runtime.source.kind}, sandbox ${(runtime.source.manifest.bytes / 1024).toFixed(0)} KiB`);
console.log(table(rows));
noop.release();
runtime.close();
void isolate;
