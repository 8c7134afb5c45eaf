// The cold path taken apart step by step, in-process (no HTTP), on pooled and warmed isolates:
// `npx node --no-node-snapshot bench/cold-steps.mjs [--n=200]`.
//
// Each sample takes a fresh ready isolate from a pool (the runtime's own, filled between samples so
// no sample waits for a build) and loads a distinct hello worker into it the way worker-loader.ts
// does, timing each crossing: compileModule, instantiate, evaluate, installWorker, first dispatch.
// Variants alternate sample by sample (interleaved A/B in one process):
//   async-instantiate  instantiate as an async call (one more round trip to isolated-vm's threads)
//   sync-instantiate   instantiateSync: linking runs no guest code; a fresh isolate is idle, so the
//                      lock is free and the call costs microseconds on this thread
//   ping               sync-instantiate, with a no-op async call (getHeapStatistics) fired into
//                      another isolate at the start of the cold start: does a thread already
//                      awake make the following crossings cheaper? (2026-12-06: no; see README)
import { join } from 'node:path';
import { rootDir } from './lib/procs.mjs';
import { summarize, table, fmtMs, sleep } from './lib/stats.mjs';

const dist = (p) => import(join(rootDir, 'dist', 'src', p));
const { Runtime } = await dist('runtime/runtime.js');
const { createLogger } = await dist('observability/logger.js');

const argv = process.argv.slice(2);
const N = Number(argv.find((a) => a.startsWith('--n='))?.split('=')[1] ?? 150);
const VARIANTS = ['async-instantiate', 'sync-instantiate', 'ping'];

const runtime = await Runtime.create({ logger: createLogger({ level: 'warn' }), pool: { min: 4, max: 4 } });
const wire = { method: 'GET', url: 'http://hello.bench/', pathname: '/', headers: [['host', 'hello.bench']], body: null };
const samples = Object.fromEntries(VARIANTS.map((v) => [v, { compile: [], instantiate: [], evaluate: [], install: [], dispatch: [], total: [] }]));

for (let i = 0; i < N * VARIANTS.length; i++) {
  const variant = VARIANTS[i % VARIANTS.length];
  while (runtime.pool.stats().ready < 2) await sleep(2); // no sample waits for a build
  await sleep(5); // the gap between cold starts that lets isolated-vm's threads fall asleep
  const s = samples[variant];
  const code = `export default { fetch() { return new Response('Hello World! ${i}\\n', { headers: { 'content-type': 'text/plain;charset=UTF-8' } }); } };`;
  const t0 = performance.now();
  const ready = await runtime.pool.take(128);
  if (variant === 'ping') runtime.pool.ready.at(-1)?.isolate.getHeapStatistics().catch(() => {});
  const t1 = performance.now();
  const mod = await ready.isolate.compileModule(code, { filename: `file:///w${i}.js` });
  const t2 = performance.now();
  if (variant === 'async-instantiate') await mod.instantiate(ready.context, () => { throw new Error('no imports'); });
  else mod.instantiateSync(ready.context, () => { throw new Error('no imports'); });
  const t3 = performance.now();
  await mod.evaluate({ timeout: 1000 });
  const t4 = performance.now();
  const ns = mod.namespace;
  await ready.entry.installWorker.apply(undefined, [ns.derefInto(), '{}'], { timeout: 1000 });
  ns.release();
  const t5 = performance.now();
  await ready.entry.dispatchFetch.apply(undefined, [1, new (await import('isolated-vm')).default.ExternalCopy(wire).copyInto()], { result: { promise: true, copy: true } });
  const t6 = performance.now();
  s.compile.push(t2 - t1);
  s.instantiate.push(t3 - t2);
  s.evaluate.push(t4 - t3);
  s.install.push(t5 - t4);
  s.dispatch.push(t6 - t5);
  s.total.push(t6 - t0);
  ready.dispose('bench');
}

const rows = [['variant', 'step', 'p50 µs', 'p90 µs', 'p99 µs']];
for (const v of VARIANTS) {
  for (const [step, values] of Object.entries(samples[v])) {
    const x = summarize(values.map((ms) => ms * 1000));
    rows.push([v, step, fmtMs(x.p50), fmtMs(x.p90), fmtMs(x.p99)]);
  }
}
console.log(table(rows));
runtime.close();
process.exit(0);
