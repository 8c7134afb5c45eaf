// Pool policies A/B, in-process (no HTTP), interleaved: `npx node --no-node-snapshot bench/pool-ab.mjs
// [--workers=300] [--passes=6] [--rate=0]`.
//
// One Runtime per variant in this process, each with its own copy of N different hello workers.
// Passes alternate between the variants; a pass evicts that runtime's workers, waits for its pool
// to be full and idle, then cold-starts every worker once, back to back (rate 0: no pause, a
// storm) or paced at --rate a second. Reported per variant: bring-up (coldMs) and the whole
// runtime.fetch, p50/p99 over all passes, pool misses per pass.
// `--trace` (issue 23, round 8): each cold start taken apart by step (bench/lib/cold-trace.mjs),
// p50/p90/p99 per step per variant, and the slowest 1% of cold starts listed step by step with
// what else was going on (serving-thread GC, its run-queue wait, pool builds under way).
// `--a=<other checkout, built>`: every variant runs twice, `A <id>` on that checkout's runtime
// and `B <id>` on this one, in this process, passes interleaved (an A/B against main).
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { rootDir } from './lib/procs.mjs';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';
import { summarize, table, fmtMs, sleep } from './lib/stats.mjs';

const dist = (p) => import(join(rootDir, 'dist', 'src', p));
const { singleScriptWorker } = await dist('model/worker-definition.js');
const { createLogger } = await dist('observability/logger.js');

const arg = (name, fallback) => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const N = Number(arg('workers', 300));
const PASSES = Number(arg('passes', 6));
const RATE = Number(arg('rate', 0));
const ONLY = arg('only', null)?.split(',');
const TRACE = process.argv.includes('--trace');
const A_ROOT = arg('a', null);
const tracing = TRACE ? await (await import('./lib/cold-trace.mjs')).installColdTrace(A_ROOT ? [A_ROOT, rootDir] : [rootDir]) : null;
const { breakdown, STEPS } = TRACE ? await import('./lib/cold-trace.mjs') : {};

// The base snapshot as it was before round 5 of issue 23 (no warm-up script), for the variants
// that compare it: built here, into a temporary file, only when one of them runs.
async function snapshotWithoutWarmUp() {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { sandboxBundlePath, sandboxManifestPath, snapshotBuilderPath } = await dist('runtime/paths.js');
  const { toExternal, readManifest } = await dist('runtime/isolate-source.js');
  const out = join(mkdtempSync(join(tmpdir(), 'cinder-pool-ab-')), 'snapshot.bin');
  execFileSync(process.execPath, ['--no-node-snapshot', snapshotBuilderPath, sandboxBundlePath, sandboxManifestPath, out, '--no-warm-up']);
  const bytes = readFileSync(out);
  return { kind: 'snapshot', snapshot: toExternal(bytes), bytes: bytes.length, manifest: readManifest() };
}

const ALL = {
  'defer-always': { pool: { urgentRefill: false } },
  'urgent-refill': { pool: {} },
  'one-build-at-a-time': { pool: { parallelBuilds: 1 } },
  'max-256': { pool: { max: 256 } },
  // issue 23 round 9: refills built in the normal class of isolated-vm's threads (the default),
  // against the background class (patch 14)
  'normal-class-builds': { pool: { backgroundBuilds: false } },
  'background-builds': { pool: { backgroundBuilds: true } },
  // issue 23 round 8: the pool holds every isolate a pass takes and builds none during the pass
  // (refills held until it ends): what the cold starts cost with no build competing for the cores
  'frozen-pool': { frozen: true, pool: { min: 310, max: 310 } },
  // issue 23 round 5: the warm-up script in the base snapshot, and the pool's warm-up rounds
  'plain-snapshot-32-rounds': { coldSnapshot: true, pool: { warmUpRounds: 32 } },
  'plain-snapshot-16-rounds': { coldSnapshot: true, pool: { warmUpRounds: 16 } },
  'warm-snapshot-32-rounds': { pool: { warmUpRounds: 32 } },
  'warm-snapshot-16-rounds': { pool: { warmUpRounds: 16 } },
  'warm-snapshot-8-rounds': { pool: { warmUpRounds: 8 } },
};
const DEFAULT_VARIANTS = ['defer-always', 'urgent-refill', 'one-build-at-a-time'];
const SELECTED = Object.entries(ALL).filter(([id]) => (ONLY ? ONLY.includes(id) : DEFAULT_VARIANTS.includes(id)));
const VARIANTS = A_ROOT ? SELECTED.flatMap(([id, o]) => [[`A ${id}`, { ...o, root: A_ROOT }], [`B ${id}`, { ...o, root: rootDir }]]) : SELECTED.map(([id, o]) => [id, { ...o, root: rootDir }]);
const coldSnapshot = VARIANTS.some(([, o]) => o.coldSnapshot) ? await snapshotWithoutWarmUp() : null;

await buildWorkers();
const hello = readFileSync(join(buildDir, 'hello.mjs'), 'utf8');
const logger = createLogger({ level: 'warn' });
const runs = [];
for (const [id, options] of VARIANTS) {
  const { coldSnapshot: cold, frozen, root, ...rest } = options;
  const { Runtime } = await import(join(root, 'dist', 'src', 'runtime/runtime.js'));
  const runtime = await Runtime.create({ logger, ...rest, ...(cold ? { isolateSource: coldSnapshot } : {}) });
  for (let i = 0; i < N; i++) {
    const def = singleScriptWorker(`w${i}`, `${hello}\n// ${id} ${i}\n`);
    for (const m of def.modules) m.type = 'esm';
    runtime.deploy(def);
  }
  runs.push({ id, runtime, frozen, cold: [], total: [], misses: [], cpu: [], errors: 0, traces: [] });
}
const request = (i) => ({ method: 'GET', url: `http://w${i}.bench/`, headers: [['host', `w${i}.bench`]], body: null });

async function waitFull(runtime) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const pool = runtime.poolStats();
    if (pool.ready >= pool.target && pool.building === 0) return;
    await sleep(5);
  }
}

async function settle(runtime) {
  for (let i = 0; i < N; i++) runtime.evict(`w${i}`);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const pool = runtime.poolStats();
    if (pool.ready >= pool.target && pool.building === 0 && runtime.isolatesAwaitingDispose() === 0) break;
    await sleep(20);
  }
  await sleep(100);
}

for (let pass = 0; pass < PASSES; pass++) {
  for (const run of pass % 2 ? [...runs].reverse() : runs) {
    await settle(run.runtime);
    const before = run.runtime.poolStats().misses;
    const cpuAtPassStart = process.cpuUsage();
    const started = performance.now();
    const tracedBefore = tracing?.traces.length ?? 0;
    if (run.frozen) run.runtime.pool.pump = run.runtime.pool.scheduleRefill = () => {};
    for (let i = 0; i < N; i++) {
      if (RATE) {
        const wait = started + (i * 1000) / RATE - performance.now();
        if (wait > 0.5) await sleep(wait);
      }
      const t = performance.now();
      const res = await run.runtime.fetch(`w${i}`, request(i));
      const ms = performance.now() - t;
      if (res.status !== 200) run.errors++;
      if (pass > 0) {
        run.total.push(ms);
        if (res.coldMs != null) run.cold.push(res.coldMs);
      }
    }
    if (run.frozen) {
      delete run.runtime.pool.pump;
      delete run.runtime.pool.scheduleRefill;
      run.runtime.pool.scheduleRefill();
    }
    if (pass > 0) run.misses.push(run.runtime.poolStats().misses - before);
    if (pass > 0 && tracing) run.traces.push(...tracing.traces.slice(tracedBefore));
    // The process's CPU (every thread: serving and isolated-vm's builds) over the pass and the
    // refill back to a full pool after it, per cold start.
    const cpuBefore = cpuAtPassStart;
    await waitFull(run.runtime);
    const used = process.cpuUsage(cpuBefore);
    if (pass > 0) run.cpu.push((used.user + used.system) / 1000 / N);
    process.stderr.write(`[pool-ab] pass ${pass} ${run.id}: ${(N / ((performance.now() - started) / 1000)).toFixed(0)} cold/s, ${run.runtime.poolStats().misses - before} misses\n`);
  }
}

const rows = [['variant', 'bring-up p50', 'p90', 'p99', 'fetch p50', 'fetch p99', 'misses/pass (median)', 'CPU ms per cold start (median pass)', 'errors']];
for (const run of runs) {
  const c = summarize(run.cold);
  const t = summarize(run.total);
  rows.push([run.id, fmtMs(c.p50), fmtMs(c.p90), fmtMs(c.p99), fmtMs(t.p50), fmtMs(t.p99), summarize(run.misses).p50, fmtMs(summarize(run.cpu).p50), run.errors]);
}
console.log(`${N} different hello workers, each cold once per pass, ${RATE ? `${RATE}/s` : 'no pause'}; ${PASSES - 1} measured passes per variant, interleaved (ms)`);
console.log(table(rows));
if (tracing) {
  const cols = [...STEPS, 'whole', 'gc', 'runDelay', 'isolateCpu'];
  const gapCols = [];
  const steps = [['variant', 'step', 'p50', 'p90', 'p99', 'max', 'mean']];
  for (const run of runs) {
    const rowsOf = run.traces.filter((t) => t.ready > 0).map((t) => breakdown(t, tracing.gcs));
    for (const c of [...cols, ...gapCols]) {
      const x = summarize(rowsOf.map((r) => r[c] ?? 0));
      if (x) steps.push([run.id, c, fmtMs(x.p50), fmtMs(x.p90), fmtMs(x.p99), fmtMs(x.max), fmtMs(x.mean)]);
    }
  }
  console.log('\nEach cold start that found the pool not empty, by step (ms; rest = linking, evaluating and the serving thread\'s own work; gc = serving-thread GC inside it; runDelay = serving thread runnable but not running; isolateCpu = the taken isolate\'s CPU over the load)');
  console.log(table(steps));
  for (const run of runs) {
    // Pool misses are their own story (a build on the request path): these are the cold starts
    // that found an isolate ready.
    const rowsOf = run.traces.filter((t) => t.ready > 0).map((t) => breakdown(t, tracing.gcs)).sort((a, b) => b.whole - a.whole);
    const slow = rowsOf.slice(0, Math.max(3, Math.ceil(rowsOf.length / 100)));
    const head = ['#', ...cols, 'building', 'ready'];
    const list = [head, ...slow.map((r, i) => [i + 1, ...cols.map((c) => fmtMs(r[c])), r.building, r.ready])];
    const mean = (c) => slow.reduce((n, r) => n + r[c], 0) / slow.length;
    list.push(['mean', ...cols.map((c) => fmtMs(mean(c))), fmtMs(mean('building')), fmtMs(mean('ready'))]);
    const all = (c) => rowsOf.reduce((n, r) => n + r[c], 0) / rowsOf.length;
    list.push(['all mean', ...cols.map((c) => fmtMs(all(c))), fmtMs(all('building')), fmtMs(all('ready'))]);
    console.log(`\n${run.id}: the slowest 1% of the ${rowsOf.length} cold starts that found the pool not empty (ms)`);
    console.log(table(list));
  }
}
for (const run of runs) run.runtime.close();
process.exit(0);
