// Issue 22 (r9): the serving thread's CPU per service-binding RPC call, an earlier tree against this
// one, interleaved: `flock /work/bench.lock npx node bench/rpc-serving-cpu-ab.mjs --a=/path/to/other/tree
// [--rounds=7] [--calls=20]`. The other tree is a full checkout with its own dist/ (e.g. `git archive
// main | tar -x -C /tmp/a`, node_modules linked, `npm run build` there).
//
// Each round starts one child process per tree, A then B (B then A in odd rounds), each running
// the same calls in-process (Runtime + service bindings): a caller worker sends arguments of MB
// megabytes (`env.CALC.size(new Uint8Array(MB))`) or asks for a result of MB megabytes
// (`env.CALC.give(MB)`). Reported: the serving (main) thread's CPU per call (process.threadCpuUsage
// around `calls` sequential requests), medians over rounds, per shape, for A and B.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';

const arg = (name, fallback) => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.split('=').slice(1).join('=') ?? fallback;
const SHAPES = [
  ['args', 0],
  ['args', 1],
  ['args', 8],
  ['args', 30],
  ['result', 1],
  ['result', 8],
  ['result', 30],
];

if (arg('child', '') === '1') {
  const root = arg('root', '');
  const CALLS = Number(arg('calls', 20));
  const dist = (p) => import(join(root, 'dist', p));
  const { Runtime } = await dist('src/runtime/runtime.js');
  const { singleScriptWorker } = await dist('src/model/worker-definition.js');
  const { createLogger } = await dist('src/observability/logger.js');
  const { registerServiceBindings } = await dist('bindings/service/host.js');
  const runtime = await Runtime.create({ logger: createLogger({ level: 'silent' }), pool: { min: 1 } });
  registerServiceBindings(runtime);
  const limits = { cpuMs: 10_000, memoryMb: 256 };
  runtime.deploy(
    singleScriptWorker(
      'calc',
      `import { WorkerEntrypoint } from 'cloudflare:workers';
export default class extends WorkerEntrypoint { size(v) { return v.byteLength; } give(mb) { return new Uint8Array(mb * 1024 * 1024); } fetch() { return new Response('calc'); } }`,
      { limits },
    ),
  );
  runtime.deploy(
    singleScriptWorker(
      'caller',
      `export default { async fetch(request, env) {
  const url = new URL(request.url);
  const mb = Number(url.searchParams.get('mb'));
  if (url.pathname === '/args') return new Response(String(await env.CALC.size(mb === 0 ? new Uint8Array(16) : new Uint8Array(mb * 1024 * 1024))));
  return new Response(String((await env.CALC.give(mb)).byteLength));
} };`,
      { limits, bindings: { CALC: { type: 'service', service: 'calc' } } },
    ),
  );
  const out = {};
  for (const [kind, mb] of SHAPES) {
    const request = { method: 'GET', url: `https://caller/${kind}?mb=${mb}`, headers: [], body: null };
    const once = async () => {
      const res = await runtime.fetch('caller', request);
      const body = typeof res.body === 'string' ? res.body : Buffer.from(res.body ?? new ArrayBuffer(0)).toString();
      const expected = String(mb === 0 ? 16 : mb * 1024 * 1024);
      if (body !== expected) throw new Error(`${kind} ${mb}: answered ${body.slice(0, 200)}`);
    };
    for (let i = 0; i < 3; i++) await once(); // warm
    const before = process.threadCpuUsage();
    for (let i = 0; i < CALLS; i++) await once();
    const used = process.threadCpuUsage(before);
    out[`${kind} ${mb} MB`] = (used.user + used.system) / 1000 / CALLS;
  }
  console.log(JSON.stringify(out));
  process.exit(0);
}

const here = fileURLToPath(new URL('.', import.meta.url));
const trees = { A: arg('a', ''), B: join(here, '..') };
if (!trees.A) throw new Error('--a=<path of the other tree> is required');
const ROUNDS = Number(arg('rounds', 7));
const CALLS = arg('calls', '20');
const results = { A: [], B: [] };
const loads = [loadavg()[0]];
for (let round = 0; round < ROUNDS; round++) {
  for (const side of round % 2 ? ['B', 'A'] : ['A', 'B']) {
    const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child=1', `--root=${trees[side]}`, `--calls=${CALLS}`], { encoding: 'utf8' });
    // (the answer stands if printed: isolated-vm can crash a process at exit, see the builder)
    const line = run.stdout.trim().split('\n').pop() ?? '';
    if (!line.startsWith('{')) throw new Error(`${side}: exit ${run.status ?? run.signal}: ${run.stderr}`);
    results[side].push(JSON.parse(line));
  }
  loads.push(loadavg()[0]);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const rows = Object.keys(results.A[0]).map((shape) => {
  const a = median(results.A.map((r) => r[shape]));
  const b = median(results.B.map((r) => r[shape]));
  return { shape, A_ms: a.toFixed(2), B_ms: b.toFixed(2), B_over_A: (b / a).toFixed(2) };
});
console.table(rows);
console.log(JSON.stringify({ rounds: ROUNDS, calls: Number(CALLS), load1: loads.map((l) => l.toFixed(2)), rows }));
