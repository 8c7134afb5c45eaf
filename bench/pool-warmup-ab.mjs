// What a pooled isolate's build and warm-up cost, and what the warm-up buys the cold start that
// takes it (issue 23, round 5): `npx node --no-node-snapshot bench/pool-warmup-ab.mjs [--n=40]
// [--rounds=0,8,16,32] [--eager] [--no-plain]`.
//
// Each sample makes a ready isolate the pool's way (ReadyIsolate.create: deserialize, context,
// boot), runs the sandbox's warm-up for R rounds, then, after a 5 ms pause, brings up a distinct
// hello worker in it as worker-loader.ts does (compile, link, evaluate, installWorker) and sends it
// its first request. Variants alternate sample by sample: round counts, times the base snapshots
// (base: the runtime's, made with the builder's warm-up script; plain: made without it, as
// before round 5; with --eager, one made without it under --no-lazy, every sandbox function
// compiled at build time). Reported: build and
// warm-up as wall time and as the isolate's own CPU time (isolate.cpuTime: what a pool refill
// takes from the machine), bring-up and first dispatch (what the cold start pays).
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { rootDir } from './lib/procs.mjs';
import { summarize, table, fmtMs, sleep } from './lib/stats.mjs';

const dist = (p) => import(join(rootDir, 'dist', p));
const { ReadyIsolate } = await dist('src/runtime/ready-isolate.js');
const { loadIsolateSource, toExternal, readManifest } = await dist('src/runtime/isolate-source.js');
const { sandboxBundlePath, sandboxManifestPath, snapshotBuilderPath } = await dist('src/runtime/paths.js');

const argv = process.argv.slice(2);
const arg = (name, fallback) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const N = Number(arg('n', 40));
const ROUNDS = arg('rounds', '0,8,16,32').split(',').map(Number);
const EAGER = argv.includes('--eager');

/** The base snapshot built by scripts/build-snapshot.mjs with extra node/V8 flags and builder flags. */
function builtSnapshot(nodeFlags, builderFlags) {
  const out = join(mkdtempSync(join(tmpdir(), 'cinder-pool-warmup-ab-')), 'snapshot.bin');
  execFileSync(process.execPath, ['--no-node-snapshot', ...nodeFlags, snapshotBuilderPath, sandboxBundlePath, sandboxManifestPath, out, ...builderFlags]);
  const bytes = readFileSync(out);
  return { kind: 'snapshot', snapshot: toExternal(bytes), bytes: bytes.length, manifest: readManifest() };
}
// base: the runtime's own (round 5: made with the warm-up script); plain: without it (before);
// eager: without it, every function compiled at build time (--no-lazy)
const base = await loadIsolateSource();
const sources = { base };
if (!argv.includes('--no-plain')) sources.plain = builtSnapshot([], ['--no-warm-up']);
if (EAGER) sources.eager = builtSnapshot(['--no-lazy'], ['--no-warm-up']);
const VARIANTS = [];
for (const [name] of Object.entries(sources)) for (const r of ROUNDS) VARIANTS.push({ id: `${name} ${r} rounds`, source: name, rounds: r });

const cpuMs = (isolate) => Number(isolate.cpuTime) / 1e6;
const samples = Object.fromEntries(VARIANTS.map((v) => [v.id, {}]));
const push = (v, step, ms) => (samples[v.id][step] ??= []).push(ms);
const heaps = {};
const wire = JSON.stringify({ method: 'GET', url: 'http://hello.bench/', headers: [['host', 'hello.bench']], body: null });

for (let i = 0; i < N * VARIANTS.length; i++) {
  const v = VARIANTS[i % VARIANTS.length];
  await sleep(5);
  const t0 = performance.now();
  const ready = await ReadyIsolate.create(sources[v.source], 128);
  const t1 = performance.now();
  const c1 = cpuMs(ready.isolate);
  if (v.rounds > 0) await ready.warmUpEntry.apply(undefined, [v.rounds], { result: { promise: true }, timeout: 5000 });
  const t2 = performance.now();
  const c2 = cpuMs(ready.isolate);
  push(v, 'build wall', t1 - t0);
  push(v, 'build cpu (isolate thread)', c1);
  push(v, 'warm-up wall', t2 - t1);
  push(v, 'warm-up cpu', c2 - c1);
  await sleep(5);
  const code = `export default { fetch() { return new Response('Hello World! ${i}\\n', { headers: { 'content-type': 'text/plain;charset=UTF-8' } }); } };`;
  const t3 = performance.now();
  const mod = await ready.isolate.compileModule(code, { filename: `file:///w${i}.js` });
  mod.instantiateSync(ready.context, () => { throw new Error('no imports'); });
  await mod.evaluate({ timeout: 1000 });
  const ns = mod.namespace;
  await ready.entry.installWorker.apply(undefined, [ns.derefInto(), '{}'], { timeout: 1000 });
  ns.release();
  const t4 = performance.now();
  const c4 = cpuMs(ready.isolate);
  const answer = await ready.entry.dispatchFetch.apply(undefined, [1, wire], { result: { promise: true, copy: true } });
  const t5 = performance.now();
  if (!String(answer).includes('"status":200')) throw new Error(`hello answered ${String(answer).slice(0, 200)}`);
  push(v, 'bring-up wall', t4 - t3);
  push(v, 'first dispatch wall', t5 - t4);
  push(v, 'first dispatch cpu', cpuMs(ready.isolate) - c4);
  push(v, 'bring-up + dispatch', t5 - t3);
  if (i < VARIANTS.length) heaps[v.id] = await ready.isolate.getHeapStatistics();
  ready.dispose('bench');
}

console.log(`snapshots: ${Object.entries(sources).map(([k, s]) => `${k} ${(s.bytes / 1024).toFixed(1)} KiB`).join(', ')}; n=${N} per variant, interleaved`);
const steps = Object.keys(samples[VARIANTS[0].id]);
const rows = [['step (p50 ms)', ...VARIANTS.map((v) => v.id)]];
for (const step of steps) rows.push([step, ...VARIANTS.map((v) => fmtMs(summarize(samples[v.id][step] ?? []).p50))]);
rows.push(['heap used after first request KiB', ...VARIANTS.map((v) => (heaps[v.id].used_heap_size / 1024).toFixed(0))]);
rows.push(['heap total KiB', ...VARIANTS.map((v) => (heaps[v.id].total_heap_size / 1024).toFixed(0))]);
console.log(table(rows));
process.exit(0);
