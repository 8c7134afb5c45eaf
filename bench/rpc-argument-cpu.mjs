// The caller's CPU for one RPC call with a large argument, in-process: `flock /work/bench.lock npx
// node bench/rpc-argument-cpu.mjs [--mb=33] [--calls=12]`. A caller worker sends
// `env.CALC.echo(new Uint8Array(MB))` through a service binding (33 MB is over the 32 MiB RPC
// limit, so the host refuses it after the copy: what is measured is the caller's side) and the
// runtime's `cpuMs` of each caller invocation is reported, median and spread, with the steps
// measured alone in an isolate of the same kind for reference.
import { join } from 'node:path';
import { rootDir } from './lib/procs.mjs';

const distDir = process.argv.slice(2).find((a) => a.startsWith('--dist='))?.slice(7) ?? join(rootDir, 'dist');
const dist = (p) => import(join(distDir, p));
const { Runtime } = await dist('src/runtime/runtime.js');
const { singleScriptWorker } = await dist('src/model/worker-definition.js');
const { createLogger } = await dist('src/observability/logger.js');
const { registerServiceBindings } = await dist('bindings/service/host.js');

const arg = (name, fallback) => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const MB = Number(arg('mb', 33));
const CALLS = Number(arg('calls', 12));

const runtime = await Runtime.create({ logger: createLogger({ level: 'silent' }), pool: { min: 1 } });
registerServiceBindings(runtime);
const deploy = (name, code, extra = {}) => runtime.deploy(singleScriptWorker(name, code, extra));
deploy('calc', `import { WorkerEntrypoint } from 'cloudflare:workers';
export default class extends WorkerEntrypoint { echo(v) { return v.byteLength; } fetch() { return new Response('calc'); } }`);
// The call, and what parts of it cost alone: the allocation, the allocation and one copy of it.
const VARIANTS = {
  call: 'String(await env.CALC.echo(bytes))',
  alloc: 'String(bytes.byteLength)',
  'alloc+copy': 'String(bytes.slice().byteLength)',
};
for (const [variant, answer] of Object.entries(VARIANTS)) {
  deploy(variant, `export default { async fetch(request, env) {
  const bytes = new Uint8Array(${MB} * 1024 * 1024);
  try { return new Response(${answer}); } catch (e) { return new Response(e.name + ': ' + e.message); }
} };`, { limits: { cpuMs: 5000 }, bindings: { CALC: { type: 'service', service: 'calc' } } });
}

const request = { method: 'GET', url: 'https://caller/', headers: [], body: null };
const cpu = Object.fromEntries(Object.keys(VARIANTS).map((v) => [v, []]));
const answers = {};
for (let i = 0; i < CALLS + 2; i++) {
  for (const variant of Object.keys(VARIANTS)) {
    const res = await runtime.fetch(variant, request);
    answers[variant] = typeof res.body === 'string' ? res.body : Buffer.from(res.body ?? new ArrayBuffer(0)).toString();
    if (i >= 2) cpu[variant].push(res.cpuMs); // the first two warm the isolate up
  }
}
const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(1);
console.log(JSON.stringify({ mb: MB, calls: CALLS, callerCpuMsP50: Object.fromEntries(Object.entries(cpu).map(([v, xs]) => [v, p50(xs)])), answer: answers.call.slice(0, 100) }));
await runtime.close?.();
process.exit(0);
