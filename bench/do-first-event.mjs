// Issue 23 round 7: the CPU a Durable Object's first event is charged (its invocation record's
// cpuMs: its isolate's CPU plus its storage calls'), before and after a change, interleaved.
// `flock /work/bench.lock npx node --no-node-snapshot bench/do-first-event.mjs [--rounds=10] [--objects=6] [--a=/path/to/other/checkout]`
//
// Each round starts an in-process `cinder serve` (fresh storage processes, fresh data directory)
// from one checkout's dist, deploys a counter class (get + put per event), and sends each of
// `objects` fresh objects a first and a second event. Rounds alternate between the checkout given
// as --a (built; e.g. main) and this one (B). Reported per variant: the first object's first
// event (it meets fresh storage processes), the other objects' first events, second events, and
// the host work (ms) metered in first events' records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { rootDir } from './lib/procs.mjs';
import { summarize, table } from './lib/stats.mjs';

const argv = process.argv.slice(2);
const arg = (name, fallback) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const ROUNDS = Number(arg('rounds', 10));
const OBJECTS = Number(arg('objects', 6));
const variants = { ...(arg('a') ? { A: arg('a') } : {}), B: rootDir };
const loaded = {};
for (const [name, root] of Object.entries(variants)) {
  loaded[name] = {
    startServe: (await import(join(root, 'dist', 'src', 'app', 'serve.js'))).startServe,
    createLogger: (await import(join(root, 'dist', 'src', 'observability', 'logger.js'))).createLogger,
  };
}

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
const TOKEN = 'bench-token-0123456789abcdefgh';

async function round(variant) {
  const { startServe, createLogger } = loaded[variant];
  const dataDir = mkdtempSync(join(tmpdir(), 'cinder-do-first-'));
  const server = await startServe({ logger: createLogger({ level: 'error' }), port: 0, adminPort: 0, host: '127.0.0.1', adminHost: '127.0.0.1', token: TOKEN, dataDir, runtime: { pool: { min: 2 } } });
  const records = [];
  server.runtime.onInvocation((r) => r.kind === 'durable-object' && records.push(r));
  const form = new FormData();
  form.append('metadata', new Blob([JSON.stringify({ main_module: 'index.js', bindings: [{ type: 'durable_object_namespace', name: 'COUNTER', class_name: 'Counter' }], migrations: { new_tag: 'v1', new_classes: ['Counter'] }, limits: { cpu_ms: 1000 } })], { type: 'application/json' }), 'metadata.json');
  form.append('index.js', new Blob([COUNTER], { type: 'application/javascript+module' }), 'index.js');
  const put = await fetch(`${server.adminUrl}/workers/app`, { method: 'PUT', body: form, headers: { authorization: `Bearer ${TOKEN}` } });
  if (put.status !== 201) throw new Error(await put.text());
  const out = { firstObject: [], otherFirst: [], second: [], hostWork: [] };
  for (let i = 0; i < OBJECTS; i++) {
    for (const event of ['first', 'second']) {
      const r = await request(`${server.url}/?name=o${i}`, { headers: { host: 'app.example.com' } });
      const text = await r.body.text();
      if (r.statusCode !== 200) throw new Error(`${variant}: status ${r.statusCode}: ${text}`);
      const record = records.at(-1);
      if (event === 'second') out.second.push(record.cpuMs);
      else {
        (i === 0 ? out.firstObject : out.otherFirst).push(record.cpuMs);
        out.hostWork.push(record.hostWorkMs ?? 0);
      }
    }
  }
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
  return out;
}

const all = Object.fromEntries(Object.keys(variants).map((v) => [v, { firstObject: [], otherFirst: [], second: [], hostWork: [] }]));
for (let r = 0; r < ROUNDS; r++) {
  for (const v of r % 2 ? Object.keys(variants).reverse() : Object.keys(variants)) {
    const out = await round(v);
    for (const [k, values] of Object.entries(out)) all[v][k].push(...values);
  }
}
const rows = [['variant', 'measure', 'n', 'p50 ms', 'p90 ms', 'max ms']];
for (const [v, measures] of Object.entries(all)) {
  for (const [k, values] of Object.entries(measures)) {
    const s = summarize(values);
    rows.push([v, k, String(values.length), s.p50.toFixed(2), s.p90.toFixed(2), Math.max(...values).toFixed(2)]);
  }
}
console.log(`variants: ${JSON.stringify(variants)}`);
console.log(table(rows));
process.exit(0);
