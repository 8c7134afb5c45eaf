// Issue 23 round 7: where a Durable Object's first event spends its CPU. In-process `cinder serve`
// (from dist), a counter object class deployed; N fresh objects each get a first and a second
// event. WorkerInstance.load (the object's cold start) and addonEvent (the event) are wrapped to
// read the isolate's CPU clock around them.
// `flock /work/bench.lock npx node --no-node-snapshot bench/do-first-event.mjs [--n=30]`
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { rootDir } from './lib/procs.mjs';
import { summarize, table, fmtMs } from './lib/stats.mjs';

const dist = (p) => import(join(rootDir, 'dist', 'src', p));
const { startServe } = await dist('app/serve.js');
const { WorkerInstance } = await dist('runtime/worker-instance.js');
const { createLogger } = await dist('observability/logger.js');
const { CpuMeter } = await dist('runtime/cpu-meter.js');
if (process.env.DEBUG_CPU) {
  const sample = CpuMeter.prototype.sample;
  CpuMeter.prototype.sample = function (inFlight) {
    const before = { last: this.lastCpu, progress: this.cpuAtProgress };
    const out = sample.call(this, inFlight);
    if (out) console.log('breach', { ...before, now: this.lastCpu, culprit: out.culprit?.kind, cpuNs: out.culprit?.cpuNs, stack: new Error().stack.split('\n').slice(2, 6).join(' | ') });
    return out;
  };
}
const { ObjectStorageClient } = await import(join(rootDir, 'dist', 'bindings', 'durable-objects', 'storage-client.js'));
const storageCalls = new Map(); // by call index in an object's life: the CPU charged
const clients = new WeakMap();
const send = ObjectStorageClient.prototype.send;
ObjectStorageClient.prototype.send = function (op, request, call, bound, mayReplay) {
  const n = (clients.get(this) ?? 0) + 1;
  clients.set(this, n);
  const label = `storage call ${n} (${op} ${request[0]})`;
  const charge = bound.charge;
  return send.call(this, op, request, call, { ...bound, charge: (ms) => { if (!storageCalls.has(label)) storageCalls.set(label, []); storageCalls.get(label).push(ms); charge?.(ms); } }, mayReplay);
};
const argv = process.argv.slice(2);
const N = Number(argv.find((a) => a.startsWith('--n='))?.split('=')[1] ?? 30);

const cpuMs = (ready) => Number(ready.isolate.cpuTime) / 1e6;
const steps = { load: [], first: [], second: [] };
const seen = new WeakSet();
const load = WorkerInstance.prototype.load;
WorkerInstance.prototype.load = async function (...args) {
  const t0 = cpuMs(this.ready);
  try { return await load.apply(this, args); } finally { steps.load.push(cpuMs(this.ready) - t0); }
};
const event = WorkerInstance.prototype.addonEvent;
WorkerInstance.prototype.addonEvent = async function (...args) {
  const t0 = cpuMs(this.ready);
  try { return await event.apply(this, args); } finally { const d = cpuMs(this.ready) - t0; if (seen.has(this)) steps.second.push(d); else { seen.add(this); steps.first.push(d); } }
};

const COUNTER = `
export class Counter {
  constructor(state, env) { this.state = state; }
  async fetch(request) {
    const value = ((await this.state.storage.get('count')) ?? 0) + 1;
    await this.state.storage.put('count', value);
    return new Response(String(value));
  }
}
export default { fetch(request, env) { const name = new URL(request.url).searchParams.get('name'); return env.COUNTER.get(env.COUNTER.idFromName(name)).fetch(request); } };`;

const dataDir = mkdtempSync(join(tmpdir(), 'cinder-do-first-'));
const server = await startServe({ logger: createLogger({ level: 'warn' }), port: 0, adminPort: 0, host: '127.0.0.1', adminHost: '127.0.0.1', token: 'bench-token-0123456789abcdefgh', dataDir, runtime: { pool: { min: 2 } } });
const form = new FormData();
form.append('metadata', new Blob([JSON.stringify({ main_module: 'index.js', bindings: [{ type: 'durable_object_namespace', name: 'COUNTER', class_name: 'Counter' }], migrations: { new_tag: 'v1', new_classes: ['Counter'] }, limits: { cpu_ms: Number(argv.find((a) => a.startsWith('--cpu='))?.split('=')[1] ?? 1000) } })], { type: 'application/json' }), 'metadata.json');
form.append('index.js', new Blob([COUNTER], { type: 'application/javascript+module' }), 'index.js');
const put = await fetch(`${server.adminUrl}/workers/app`, { method: 'PUT', body: form, headers: { authorization: 'Bearer bench-token-0123456789abcdefgh' } });
if (put.status !== 201) throw new Error(await put.text());
const get = async (name) => { const r = await request(`${server.url}/?name=${name}`, { headers: { host: 'app.example.com' } }); const text = await r.body.text(); if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}: ${text}`); };
const order = [];
for (let i = 0; i < N; i++) {
  try { await get(`o${i}`); await get(`o${i}`); } catch (e) { console.log(`o${i}`, e.message.slice(0, 200)); }
  order.push(steps.first.at(-1));
}
const rows = [['step', 'p50 ms', 'p90 ms', 'max ms']];
for (const [k, v] of Object.entries(steps)) { const s = summarize(v); rows.push([k, s.p50.toFixed(2), s.p90.toFixed(2), Math.max(...v).toFixed(2)]); }
for (const [k, v] of storageCalls) { const s = summarize(v); rows.push([k, s.p50.toFixed(2), s.p90.toFixed(2), Math.max(...v).toFixed(2)]); }
console.log(table(rows));
for (const [k, v] of storageCalls) if (/call [12] /.test(k)) console.log(k, 'in order:', v.map((x) => x.toFixed(1)).join(' '));
console.log('first events in order:', order.map((x) => x.toFixed(1)).join(' '));
await server.close();
rmSync(dataDir, { recursive: true, force: true });
process.exit(0);
