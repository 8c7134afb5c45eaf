// What nodejs_compat costs an isolate: the bytes of each node add-on (dist/addons/manifest.json)
// and the time to install each set a worker can ask for into a fresh pooled isolate, the first
// time in the process (no V8 code cache yet) and afterwards (with it), plus the heap it adds.
// `npx node --no-node-snapshot bench/node-addons.mjs [--n=60]`
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { rootDir } from './lib/procs.mjs';
import { summarize, table, fmtMs, sleep } from './lib/stats.mjs';

const dist = (p) => import(join(rootDir, 'dist', 'src', p));
const { Runtime } = await dist('runtime/runtime.js');
const { AddonCatalog } = await dist('runtime/addons.js');
const { createLogger } = await dist('observability/logger.js');

const argv = process.argv.slice(2);
const N = Number(argv.find((a) => a.startsWith('--n='))?.split('=')[1] ?? 60);

const manifest = JSON.parse(readFileSync(join(rootDir, 'dist', 'addons', 'manifest.json'), 'utf8'));
console.log('add-on bytes (minified whitespace and syntax, names kept):');
for (const [name, { bytes }] of Object.entries(manifest).filter(([name]) => name.startsWith('nodejs-'))) console.log(`  ${name.padEnd(24)} ${(bytes / 1024).toFixed(1)} KiB`);

// What a worker gets: by flag (nodejs_compat from 2025-04-01 installs nodejs-compat, -globals and
// -process-env; the globals evaluate node:buffer and node:process), then what importing
// node:stream or node:assert adds. nodejs-compat's other modules are evaluated when imported.
const SETS = {
  'nodejs_als': ['nodejs-als'],
  // nodejs_compat before 2024-09-23: no globals, every module evaluated only when imported
  'nodejs_compat (v1)': ['nodejs-compat'],
  'nodejs_compat': ['nodejs-compat', 'nodejs-compat-globals', 'nodejs-process-env'],
  '+ node:stream': ['nodejs-compat', 'nodejs-compat-globals', 'nodejs-process-env', 'nodejs-stream'],
  '+ node:crypto': ['nodejs-compat', 'nodejs-compat-globals', 'nodejs-process-env', 'nodejs-crypto'],
  '+ node:assert': ['nodejs-compat', 'nodejs-compat-globals', 'nodejs-process-env', 'nodejs-assert'],
};

const runtime = await Runtime.create({ logger: createLogger({ level: 'warn' }), pool: { min: 4, max: 4 } });
const rows = [];
for (const [label, names] of Object.entries(SETS)) {
  const catalog = new AddonCatalog(); // a fresh catalog: its first install has no code cache
  const first = [];
  const cached = [];
  const heap = [];
  for (let i = 0; i <= N; i++) {
    while (runtime.pool.stats().ready < 2) await sleep(2);
    const ready = await runtime.pool.take(128);
    const before = (await ready.isolate.getHeapStatistics()).used_heap_size;
    const t0 = performance.now();
    await catalog.install(ready, names, 5000);
    const ms = performance.now() - t0;
    heap.push((await ready.isolate.getHeapStatistics()).used_heap_size - before);
    (i === 0 ? first : cached).push(ms);
    ready.dispose('bench');
  }
  const s = summarize(cached);
  rows.push([label, fmtMs(first[0]), fmtMs(s.p50), fmtMs(s.p99), `${(summarize(heap).p50 / 1024).toFixed(0)} KiB`]);
}
console.log(table([['set', 'first install ms', 'p50 ms (cached)', 'p99 ms (cached)', 'heap added (p50)'], ...rows]));
await runtime.close?.();
process.exit(0);
