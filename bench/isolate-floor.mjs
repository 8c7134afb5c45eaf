// What one isolate costs before Cinder does anything with it: N plain isolated-vm isolates held at
// once, RSS and V8 heap per isolate, for a bare isolate, one with an empty context, one made from
// Cinder's snapshot, and one from the snapshot with its prelude context. The floor under
// bench/density.mjs's "MB per isolate" (see bench/README.md, Density).
//
//   node --no-node-snapshot bench/isolate-floor.mjs [--n=300]
import ivm from 'isolated-vm';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rootDir } from './lib/procs.mjs';
import { table } from './lib/stats.mjs';

const n = Number(process.argv.find((a) => a.startsWith('--n='))?.split('=')[1] ?? 300);
const { loadIsolateSource } = await import(join(rootDir, 'dist', 'src', 'runtime', 'isolate-source.js'));
const source = await loadIsolateSource({});
if (source.kind !== 'snapshot') throw new Error('no snapshot available (see src/runtime/isolate-source.ts)');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const rssKb = () => process.memoryUsage().rss / 1024;

async function measure(label, make) {
  await sleep(200);
  const before = rssKb();
  const held = [];
  for (let i = 0; i < n; i++) held.push(make());
  await sleep(300);
  const after = rssKb();
  let physical = 0;
  let used = 0;
  for (const isolate of held) {
    const heap = isolate.getHeapStatisticsSync();
    physical += heap.total_physical_size;
    used += heap.used_heap_size;
  }
  for (const isolate of held) isolate.dispose();
  return [label, ((after - before) / n).toFixed(0), (physical / n / 1024).toFixed(0), (used / n / 1024).toFixed(0)];
}

const variants = [
  ['bare isolate', () => new ivm.Isolate({ memoryLimit: 128 })],
  ['bare isolate + empty context', () => {
    const isolate = new ivm.Isolate({ memoryLimit: 128 });
    isolate.createContextSync();
    return isolate;
  }],
  ["isolate from Cinder's snapshot", () => new ivm.Isolate({ memoryLimit: 128, snapshot: source.snapshot })],
  ["Cinder's snapshot + prelude context", () => {
    const isolate = new ivm.Isolate({ memoryLimit: 128, snapshot: source.snapshot });
    isolate.createContextSync();
    return isolate;
  }],
];

// Each variant in a process of its own: freed isolates leave memory behind that the next would reuse.
const only = process.argv.find((a) => a.startsWith('--variant='))?.split('=')[1];
if (only !== undefined) {
  const [label, make] = variants[Number(only)];
  process.stdout.write(JSON.stringify(await measure(label, make)));
  process.exit(0);
}
const rows = [['variant', 'RSS KB per isolate', 'V8 heap physical KB', 'V8 heap used KB']];
for (let i = 0; i < variants.length; i++) {
  const out = execFileSync(process.execPath, ['--no-node-snapshot', fileURLToPath(import.meta.url), `--n=${n}`, `--variant=${i}`], { encoding: 'utf8' });
  rows.push(JSON.parse(out));
}
console.log(`\nisolate floor (${n} isolates held at once, sandbox ${(source.manifest.bytes / 1024).toFixed(0)} KiB)`);
console.log(table(rows));
