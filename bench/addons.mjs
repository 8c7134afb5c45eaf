// What each add-on (protocol/addons.ts) costs the isolate that installs it, against a hello
// worker that installs none, in one process, interleaved: `npm run bench:addons [-- --n=40]`.
//
// For each API: its bytes (the base sandbox bundle and snapshot for what every isolate holds;
// each add-on's own bundle) and the bring-up of a worker that uses it: the server-side cold start
// (Runtime.fetch's coldMs, the worker's code cache warm, isolates from the ready pool), its p50
// and the p50 difference from hello's. The workers only name the API (typeof X), so the figure is
// the add-on's installation, not the API's use.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { rootDir } from './lib/procs.mjs';
import { summarize, table, fmtMs, sleep } from './lib/stats.mjs';

const dist = (p) => import(join(rootDir, 'dist', p));
const { Runtime } = await dist('src/runtime/runtime.js');
const { createLogger } = await dist('src/observability/logger.js');
const { snapshotKey } = await dist('src/runtime/isolate-source.js');
const { defaultCacheDir } = await dist('src/runtime/paths.js');
const { ADDONS } = await dist('protocol/addons.js');

const N = Number(process.argv.find((a) => a.startsWith('--n='))?.split('=')[1] ?? 40);

const WORKERS = {
  'hello (no add-on)': { code: `export default { fetch: () => new Response('hi') }` },
  'crypto-subtle': { code: `export default { fetch: () => new Response(typeof crypto.subtle) }` },
  compression: { code: `export default { fetch: () => new Response(typeof CompressionStream) }` },
  kv: { code: `export default { fetch: (r, env) => new Response(typeof env.KV) }`, bindings: { KV: { type: 'kv_namespace', namespace_id: 'bench' } } },
  cache: { code: `export default { fetch: () => new Response(typeof caches) }` },
  'html-rewriter': { code: `export default { fetch: () => new Response(typeof HTMLRewriter) }` },
};

const runtime = await Runtime.create({ logger: createLogger({ level: 'warn' }), pool: { min: 4, max: 4 } });
const names = Object.keys(WORKERS);
names.forEach((label, i) => {
  const w = WORKERS[label];
  runtime.deploy({ name: `w${i}`, version: `v${i}`, main: 'worker.js', modules: [{ name: 'worker.js', code: w.code, type: 'esm' }], bindings: w.bindings ?? {} });
});
const request = { method: 'GET', url: 'http://bench.test/', headers: [], body: null };
const cold = Object.fromEntries(names.map((n) => [n, []]));

async function once(i) {
  runtime.evict(`w${i}`);
  // Let the pool refill, so no sample waits for an isolate to be made.
  await sleep(15);
  const res = await runtime.fetch(`w${i}`, request);
  if (res.status !== 200) throw new Error(`${names[i]}: ${res.status} ${res.loadError ?? ''}`);
  return res.coldMs;
}

// Warm-up: each worker's code cache and each add-on's code cache are made once per process.
for (let i = 0; i < names.length; i++) await once(i);
for (let round = 0; round < N; round++) {
  for (let i = 0; i < names.length; i++) cold[names[i]].push(await once(i));
}
runtime.close();

const sandbox = readFileSync(join(rootDir, 'dist', 'sandbox.js'));
const manifest = JSON.parse(readFileSync(join(rootDir, 'dist', 'sandbox.manifest.json'), 'utf8'));
let snapshotBytes = null;
try {
  snapshotBytes = statSync(join(defaultCacheDir, `snapshot-${snapshotKey(manifest)}.bin`)).size;
} catch {
  // no snapshot on this machine (code-cache isolates)
}
const addonBytes = JSON.parse(readFileSync(join(rootDir, 'dist', 'addons', 'manifest.json'), 'utf8'));
const kib = (b) => (b == null ? '-' : `${(b / 1024).toFixed(1)} KiB`);
const helloP50 = summarize(cold[names[0]]).p50;
const rows = [['API', 'bytes', 'bring-up p50 ms', 'p90 ms', '+ over hello p50']];
rows.push([`base sandbox (every isolate; snapshot ${kib(snapshotBytes)})`, kib(sandbox.byteLength), fmtMs(helloP50), fmtMs(summarize(cold[names[0]]).p90), '-']);
for (const name of names.slice(1)) {
  const s = summarize(cold[name]);
  const files = ADDONS.find((a) => a.name === name)?.files;
  const extra = files ? ` + ${Object.values(files).map((f) => kib(statSync(join(rootDir, f)).size)).join(' + ')} wasm` : '';
  rows.push([name, kib(addonBytes[name]?.bytes) + extra, fmtMs(s.p50), fmtMs(s.p90), `+${fmtMs(s.p50 - helloP50)}`]);
}
console.log(`add-on costs, ${N} cold starts each, interleaved (${new Date().toISOString()})`);
console.log(table(rows));
