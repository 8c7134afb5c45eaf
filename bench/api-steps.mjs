// The API worker's bring-up taken apart step by step, in-process (no HTTP), with the two ways a
// cold start can bring it up interleaved sample by sample (issue 23, round 5):
//   `npx node --no-node-snapshot bench/api-steps.mjs [--n=40] [--worker=api|hono|hello]`
//
//   plain     a pooled, warmed isolate (the runtime's own pool, filled between samples), then the
//             worker's module compiled from its after-run code cache, linked, evaluated (its top
//             level), its add-ons installed, installWorker: worker-loader.ts's steps
//   snapshot  an isolate made from the version's deployment snapshot (the steps of
//             ReadyIsolate.create: spawnIsolate = deserialize, context, continuation slot, boot
//             and the entry References), then installFromSnapshot's two crossings
//   base      the same create steps on the base snapshot (what a pool build costs before warm-up)
//   plain:compile-cache  plain, with the code cache V8 makes at compile time (top level only)
//
// Also prints the snapshots' sizes and the heap each kind of isolate holds after bring-up.
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { rootDir } from './lib/procs.mjs';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';
import { summarize, table, fmtMs, sleep } from './lib/stats.mjs';

const dist = (p) => import(join(rootDir, 'dist', p));
const { Runtime } = await dist('src/runtime/runtime.js');
const { createLogger } = await dist('src/observability/logger.js');
const { singleScriptWorker } = await dist('src/model/worker-definition.js');
const { buildDeploymentSnapshot, NAMESPACE_GLOBAL } = await dist('src/runtime/deployment-snapshot.js');
const { toExternal } = await dist('src/runtime/isolate-source.js');
const { HostBridge } = await dist('src/runtime/host-bridge.js');
const { installStandardOps } = await dist('src/app/standard-ops.js');
const { defaultAddons } = await dist('src/runtime/addons.js');
const wall = await dist('protocol/wall.js');
const ivm = (await import('isolated-vm')).default;

const argv = process.argv.slice(2);
const arg = (name, fallback) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const N = Number(arg('n', 40));
const WORKER = arg('worker', 'api');
const VARIANTS = (arg('variants', 'plain,snapshot,base')).split(',');
const PATHS = { api: '/api/users/7', hono: '/api/highlight?lang=javascript', hello: '/' };

await buildWorkers();
const file = { api: 'api-worker.mjs', hono: 'hono-app.mjs', hello: 'hello.mjs' }[WORKER];
const code = readFileSync(join(buildDir, file), 'utf8');
const logger = createLogger({ level: 'warn' });
const runtime = await Runtime.create({ logger, pool: { min: 4, max: 4 } });
installStandardOps(runtime, { allowPrivate: false });

const def = singleScriptWorker(WORKER, code);
for (const m of def.modules) m.type = 'esm';
// Deployment snapshots built with V8 flags in the builder process (variant snapshot:<name>):
//   flush  --stress-flush-code: the GC CreateBlob runs drops every function's bytecode (as
//          FunctionCodeHandling::kClear would): a smaller snapshot, functions compiled again lazily
//   eager  --no-lazy: every function compiled at build time (a larger snapshot, no lazy compiles)
//   cold     no warm-up script (as before round 5)
//   sandbox  the warm-up script runs the sandbox's warm-up only
//   default  (round 5) the sandbox's warm-up and one GET / to the worker (its handlers' bytecode kept)
const BUILD_OPTIONS = { default: {}, flush: { execArgv: ['--stress-flush-code'], warmUp: 'none' }, eager: { execArgv: ['--no-lazy'], warmUp: 'none' }, cold: { warmUp: 'none' }, sandbox: { warmUp: 'sandbox' } };
const BUILD_FLAGS = BUILD_OPTIONS;
const builds = {};
for (const v of VARIANTS.filter((v) => v.startsWith('snapshot'))) {
  const name = v.split(/[:-]/)[1] && BUILD_FLAGS[v.split(':')[1]?.replace(/-sync$/, '')] ? v.split(':')[1].replace(/-sync$/, '') : 'default';
  if (builds[name]) continue;
  const made = await buildDeploymentSnapshot(def, BUILD_OPTIONS[name]);
  if (!made.ok) throw new Error(`deployment snapshot (${name}): ${made.reason}`);
  builds[name] = made;
}
const built = builds.default ?? Object.values(builds)[0];
const snapshotBytes = built?.snapshot.data.byteLength ?? 0;
const buildOf = (variant) => builds[variant.includes(':') ? variant.split(':')[1].replace(/-sync$/, '') : 'default'];
// The after-run code cache, made the runtime's way: deploy, one request, the cache made when idle.
const plainDef = { ...def, codeCache: new Map() };
const cacheReady = new Promise((resolve) => (plainDef.onCodeCacheUpdated = (_cache, reason) => reason === 'after-run' && resolve()));
runtime.deploy(plainDef);
const first = await runtime.fetch(WORKER, { method: 'GET', url: `http://${WORKER}.bench${PATHS[WORKER]}`, headers: [['host', `${WORKER}.bench`]], body: null });
if (first.status !== 200) throw new Error(`first request answered ${first.status}`);
await cacheReady;
runtime.evict(WORKER);
const cache = plainDef.codeCache.get(def.main);
// plain:compile-cache: the cache V8 makes at compile time (the top level only), for the A/B
// against the after-run cache the runtime keeps (it also holds what the top level and a first
// request compiled).
const compileCache = await (async () => {
  const scratch = await runtime.pool.take(128);
  const mod = await scratch.isolate.compileModule(def.modules[0].code, { filename: `file:///${def.main}`, produceCachedData: true });
  const bytes = Buffer.from(mod.cachedData.copy());
  scratch.dispose('bench');
  return bytes;
})();
const main = def.modules[0];
const wanted = defaultAddons.resolve(def, new Set());

const baseSource = runtime.source;
const sources = Object.fromEntries(Object.entries(builds).map(([name, b]) => [name, { kind: 'snapshot', snapshot: toExternal(b.snapshot.data), bytes: b.snapshot.data.byteLength, manifest: baseSource.manifest }]));
const sourceOf = (variant) => sources[variant.includes(':') ? variant.split(':')[1].replace(/-sync$/, '') : 'default'];
const wire = { method: 'GET', url: `http://${WORKER}.bench${PATHS[WORKER]}`, headers: [['host', `${WORKER}.bench`]], body: null };
const statuses = {};
const spawner = new ivm.Isolate({ memoryLimit: 8 });
const BOOT_NAMES = [...wall.GUEST_ENTRIES, wall.WARM_UP_ENTRY];

/** ReadyIsolate.create's steps, timed. */
async function createSteps(source, t, syncGets) {
  const a = performance.now();
  const isolate = await spawner.spawnIsolate({ memoryLimit: 128, snapshot: source.snapshot });
  const b = performance.now();
  const context = await isolate.createContext();
  const c = performance.now();
  await context.exposeContinuationData(wall.CONTINUATION_DATA_GLOBAL);
  const d = performance.now();
  const bridge = new HostBridge();
  const boot = await context.global.get(wall.BOOT_GLOBAL, { reference: true });
  const entry = await boot.apply(undefined, [bridge.call, bridge.callSync, bridge.send, 128], { result: { reference: true } });
  boot.release();
  const d2 = performance.now();
  // syncGets: the entry object is a fresh object literal of the sandbox's boot (own data
  // properties only), so reading it runs no JavaScript; the new isolate is idle, its lock free.
  const refs = syncGets
    ? BOOT_NAMES.map((name) => entry.getSync(name, { reference: true }))
    : await Promise.all(BOOT_NAMES.map((name) => entry.get(name, { reference: true })));
  if (syncGets) entry.getSync(wall.PRELUDE_EVALUATED_AT);
  else await entry.get(wall.PRELUDE_EVALUATED_AT);
  entry.release();
  const e = performance.now();
  t.deserialize.push(b - a);
  t.context.push(c - b);
  t.continuation.push(d - c);
  t.boot.push(d2 - d);
  t['entry refs'].push(e - d2);
  return { isolate, context, bridge, installWorker: refs[0], dispatchFetch: refs[1] };
}

const samples = Object.fromEntries(VARIANTS.map((v) => [v, {}]));
const push = (v, step, ms) => (samples[v][step] ??= []).push(ms);
const heaps = Object.fromEntries(VARIANTS.map((v) => [v, []]));

for (let i = 0; i < N * VARIANTS.length; i++) {
  const variant = VARIANTS[i % VARIANTS.length];
  while (runtime.pool.stats().ready < 2) await sleep(2);
  await sleep(5);
  const t = new Proxy({}, { get: (_, step) => ({ push: (ms) => push(variant, step, ms) }) });
  const t0 = performance.now();
  let isolate;
  if (variant.startsWith('plain')) {
    const ready = await runtime.pool.take(128);
    const t1 = performance.now();
    const mod = await ready.isolate.compileModule(main.code, { filename: `file:///${main.name}`, cachedData: toExternal(variant === 'plain:compile-cache' ? compileCache : cache) });
    if (mod.cachedDataRejected) throw new Error('code cache rejected');
    const t2 = performance.now();
    if (wanted.length) await defaultAddons.install(ready, wanted, 1000);
    const t3 = performance.now();
    mod.instantiateSync(ready.context, () => { throw new Error('no imports'); });
    const t4 = performance.now();
    await mod.evaluate({ timeout: 1000 });
    const t5 = performance.now();
    const ns = mod.namespace;
    await ready.entry.installWorker.apply(undefined, [ns.derefInto(), '{}'], { timeout: 1000 });
    ns.release();
    const t6 = performance.now();
    push(variant, 'take', t1 - t0);
    push(variant, 'compile (cache)', t2 - t1);
    push(variant, `add-ons (${wanted.join(',') || 'none'})`, t3 - t2);
    push(variant, 'instantiate', t4 - t3);
    push(variant, 'evaluate (top level)', t5 - t4);
    push(variant, 'installWorker', t6 - t5);
    push(variant, 'whole', t6 - t0);
    const answer = await ready.entry.dispatchFetch.apply(undefined, [1, JSON.stringify(wire)], { result: { promise: true, copy: true } });
    push(variant, '(first dispatch)', performance.now() - t6);
    statuses[variant] ??= String(answer).slice(0, 400);
    isolate = ready.isolate;
  } else {
    const made = await createSteps(variant.startsWith('snapshot') ? sourceOf(variant) : baseSource, t, variant.endsWith('-sync'));
    const t1 = performance.now();
    if (variant.startsWith('snapshot')) {
      const ns = await made.context.eval(`(() => { const ns = globalThis[${JSON.stringify(NAMESPACE_GLOBAL)}]; delete globalThis[${JSON.stringify(NAMESPACE_GLOBAL)}]; return ns; })()`, { reference: true });
      const t2 = performance.now();
      await made.installWorker.apply(undefined, [ns.derefInto(), '{}'], { timeout: 1000 });
      ns.release();
      push(variant, 'namespace', t2 - t1);
      push(variant, 'installWorker', performance.now() - t2);
    }
    const t3 = performance.now();
    push(variant, 'whole', t3 - t0);
    if (variant.startsWith('snapshot')) {
      const answer = await made.dispatchFetch.apply(undefined, [1, JSON.stringify(wire)], { result: { promise: true, copy: true } });
      push(variant, '(first dispatch)', performance.now() - t3);
      statuses[variant] ??= String(answer).slice(0, 400);
    }
    isolate = made.isolate;
  }
  if (i < VARIANTS.length * 3) heaps[variant].push(await isolate.getHeapStatistics());
  isolate.dispose();
}

const rows = [['variant', 'step', 'p50 ms', 'p90 ms']];
for (const v of VARIANTS) {
  for (const [step, values] of Object.entries(samples[v])) {
    const x = summarize(values);
    rows.push([v, step, fmtMs(x.p50), fmtMs(x.p90)]);
  }
}
console.log(`worker ${WORKER}: ${(code.length / 1024).toFixed(1)} KiB; after-run code cache ${(cache.byteLength / 1024).toFixed(1)} KiB; ` +
  `compile-time cache ${(compileCache.byteLength / 1024).toFixed(1)} KiB; deployment snapshot ${Object.entries(builds).map(([k, b]) => `${k} ${(b.snapshot.data.byteLength / 1024).toFixed(1)} KiB (built in ${b.ms.toFixed(0)} ms)`).join(', ')}; base snapshot ${(baseSource.bytes / 1024).toFixed(1)} KiB; n=${N}`);
console.log(table(rows));
const heapRows = [['variant', 'used heap KiB', 'total heap KiB', 'external KiB']];
for (const v of VARIANTS) {
  const h = heaps[v].at(-1);
  if (h) heapRows.push([v, (h.used_heap_size / 1024).toFixed(0), (h.total_heap_size / 1024).toFixed(0), (h.externally_allocated_size / 1024).toFixed(0)]);
}
console.log(table(heapRows));
console.log(statuses);
runtime.close();
process.exit(0);
