// KV round trip: `node --no-node-snapshot bench/kv.mjs` (add --quick for a smoke run; needs
// `npm run build` first). Measures what one KV call costs a worker, from guest code across the
// isolate wall to the backend and back:
//
//   cached get        the same key again and again: answered by the host's LRU read cache
//   uncached get      SQLite, cache off, a different key each time
//   put               SQLite (WAL, synchronous=NORMAL: survives kill -9), a new key each time
//   put, fsync        SQLite with synchronous=FULL (survives power loss)
//   memory / Redis    the other backends, for comparison (Redis only if redis-server is on PATH)
//   bridge floor      the same guest call answered by a host op that does nothing
//
// Each case runs batches of sequential calls inside one invocation (so invocation overhead is
// amortised away) and reports the per-call time of each batch; "service" rows call the KVService
// directly from the host, so the difference to the "worker" row is the bridge.
//
// Output: a table on stdout, bench/results/kv-<timestamp>.json and bench/results/latest-kv.json.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { environment, freePort, rootDir, benchDir } from './lib/procs.mjs';
import { summarize, table } from './lib/stats.mjs';

const dist = join(rootDir, 'dist');
if (!existsSync(join(dist, 'bindings', 'kv', 'index.js'))) {
  console.error('bench/kv.mjs runs the built code: run `npm run build` first');
  process.exit(1);
}
const { Runtime } = await import('../dist/src/runtime/runtime.js');
const { singleScriptWorker } = await import('../dist/src/model/worker-definition.js');
const { installKV, KVService, MemoryBackend, RedisBackend, SqliteBackend } = await import('../dist/bindings/kv/index.js');

const quick = process.argv.includes('--quick');
const BATCH = quick ? 50 : 200;
const BATCHES = quick ? 10 : 60;
const WARMUP_BATCHES = quick ? 2 : 5;
const VALUE = 'v'.repeat(100);

const WORKER = `
const VALUE = ${JSON.stringify(VALUE)};
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const op = url.searchParams.get('op');
    const n = Number(url.searchParams.get('n'));
    const base = Number(url.searchParams.get('base'));
    let misses = 0;
    for (let i = 0; i < n; i++) {
      if (op === 'hot') { if ((await env.KV.get('hot')) === null) misses++; }
      else if (op === 'get') { if ((await env.KV.get('k' + (base + i))) === null) misses++; }
      else await env.KV.put('p' + (base + i), VALUE);
    }
    return new Response(String(misses));
  },
};`;

function startRedis() {
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) return null;
  return freePort().then(
    (port) =>
      new Promise((resolve, reject) => {
        const dir = mkdtempSync(join(tmpdir(), 'cinder-bench-redis-'));
        const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          if (/Ready to accept connections/.test(out)) resolve({ url: `redis://127.0.0.1:${port}`, stop: () => (child.kill('SIGTERM'), rmSync(dir, { recursive: true, force: true })) });
        });
        child.once('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)));
      }),
  );
}

async function seed(service, namespace, count) {
  for (let i = 0; i < count; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, j) => service.put(namespace, `k${i + j}`, VALUE)));
  }
}

/** One batch through a worker: ms per call. Keys start at `base` (distinct for puts). */
async function workerBatch(worker, op, base) {
  const started = performance.now();
  const res = await runtime.fetch(worker, { method: 'GET', url: `http://${worker}.bench/?op=${op}&n=${BATCH}&base=${base}`, headers: [], body: null });
  const ms = performance.now() - started;
  if (res.status !== 200) throw new Error(`${worker} ${op}: ${res.status} ${res.exception?.message ?? res.limit?.message ?? ''}`);
  if (op !== 'put' && worker !== 'floor' && res.body !== '0') throw new Error(`${worker} ${op}: ${res.body} misses (the keys were not seeded)`);
  return ms / BATCH;
}

/** The same batch made on the host, straight to the service (no isolate, no bridge). */
async function serviceBatch(service, namespace, op, base) {
  const started = performance.now();
  for (let i = 0; i < BATCH; i++) {
    if (op === 'hot') await service.get(namespace, 'hot');
    else if (op === 'get') await service.get(namespace, `k${base + i}`);
    // New keys, not the worker's: SQLite skips the sync when a put changes nothing.
    else await service.put(namespace, `d${base + i}`, VALUE);
  }
  return (performance.now() - started) / BATCH;
}

const logger = pino({ level: 'warn' });
const runtime = await Runtime.create({ logger });
const dataDir = mkdtempSync(join(tmpdir(), 'cinder-bench-kv-'));
const redis = await startRedis();
const keyspace = (WARMUP_BATCHES + BATCHES) * BATCH;

// Several configurations in one runtime: installKV registers the kv.* ops once per runtime, so
// each service's handlers go in a table of their own and the runtime's op picks the table by the
// namespace the calling worker is bound to (one namespace per configuration).
const services = new Map();
function routeOps() {
  const installed = new Map();
  for (const [namespace, service] of services) {
    const handlers = new Map();
    installKV({ registerOp: (op, handler) => handlers.set(op, handler) }, service);
    installed.set(namespace, handlers);
  }
  // The floor: the same guest call answered by a host op that does nothing (null at once), so
  // the table shows what the isolate bridge itself costs.
  installed.set('floor', new Map([...installed.values().next().value.keys()].map((op) => [op, async () => null])));
  for (const op of installed.values().next().value.keys()) {
    runtime.registerOp(op, (call, args) => {
      const binding = call.binding(args[0]);
      const handlers = binding && installed.get(binding.namespace_id);
      if (!handlers) throw new TypeError('unbound');
      return handlers.get(op)(call, args);
    });
  }
}

const configs = [
  { name: 'sqlite-cached', label: 'SQLite + LRU cache', service: () => new KVService({ backend: new SqliteBackend({ path: join(dataDir, 'kv.sqlite') }), sweepIntervalMs: 0 }) },
  { name: 'sqlite', label: 'SQLite, no cache', service: () => new KVService({ backend: new SqliteBackend({ path: join(dataDir, 'kv.sqlite') }), cache: false, sweepIntervalMs: 0 }) },
  { name: 'sqlite-full', label: 'SQLite fsync (FULL)', service: () => new KVService({ backend: new SqliteBackend({ path: join(dataDir, 'kv-full.sqlite'), synchronous: 'full' }), cache: false, sweepIntervalMs: 0 }) },
  { name: 'memory', label: 'memory, no cache', service: () => new KVService({ backend: new MemoryBackend(), cache: false, sweepIntervalMs: 0 }) },
];
if (redis) configs.push({ name: 'redis', label: 'Redis, no cache', service: () => new KVService({ backend: new RedisBackend({ url: redis.url }), cache: false, sweepIntervalMs: 0 }) });

for (const config of configs) {
  config.kv = config.service();
  services.set(config.name, config.kv);
  runtime.deploy(singleScriptWorker(config.name, WORKER, { bindings: { KV: { type: 'kv_namespace', namespace_id: config.name } }, limits: { cpuMs: 10_000 } }));
}
runtime.deploy(singleScriptWorker('floor', WORKER, { bindings: { KV: { type: 'kv_namespace', namespace_id: 'floor' } }, limits: { cpuMs: 10_000 } }));
routeOps();

const cases = [
  { label: 'bridge floor (no-op host op)', config: 'floor', op: 'hot' },
  { label: 'cached get', config: 'sqlite-cached', op: 'hot' },
  { label: 'uncached get', config: 'sqlite', op: 'get' },
  { label: 'put', config: 'sqlite', op: 'put' },
  { label: 'put, fsync', config: 'sqlite-full', op: 'put' },
  { label: 'uncached get', config: 'memory', op: 'get' },
  { label: 'put', config: 'memory', op: 'put' },
  ...(redis ? [{ label: 'uncached get', config: 'redis', op: 'get' }, { label: 'put', config: 'redis', op: 'put' }] : []),
];

// Round-robin: one batch of every case per round, so load on the machine (and JIT warm-up)
// falls on all cases alike instead of on whichever ran first.
for (const c of cases) {
  c.worker = [];
  c.service = [];
  const config = configs.find((x) => x.name === c.config);
  if (!config) continue;
  if (c.op === 'hot') await config.kv.put(config.name, 'hot', VALUE);
  if (c.op === 'get' && !config.seeded) {
    await seed(config.kv, config.name, keyspace);
    config.seeded = true;
  }
}
for (let round = 0; round < WARMUP_BATCHES + BATCHES; round++) {
  const base = round * BATCH;
  for (const c of cases) {
    const config = configs.find((x) => x.name === c.config);
    const viaWorker = await workerBatch(c.config, c.op, base);
    const viaService = config ? await serviceBatch(config.kv, config.name, c.op, base) : null;
    if (round < WARMUP_BATCHES) continue;
    c.worker.push(viaWorker);
    if (viaService !== null) c.service.push(viaService);
  }
}
const results = cases.map((c) => ({
  case: c.label,
  backend: configs.find((x) => x.name === c.config)?.label ?? '-',
  op: c.op,
  batch: BATCH,
  batches: BATCHES,
  worker: summarize(c.worker),
  service: c.service.length ? summarize(c.service) : null,
}));

const us = (ms) => (ms * 1000).toFixed(1);
const rows = [['case', 'backend', 'via', 'p50 µs', 'p99 µs', 'mean µs', 'calls/s']];
for (const r of results) {
  for (const [via, s] of [['worker', r.worker], ['service', r.service]]) {
    if (!s) continue;
    rows.push([r.case, r.backend, via, us(s.p50), us(s.p99), us(s.mean), Math.round(1000 / s.mean).toLocaleString('en-US')]);
  }
}
console.log(`\nKV round trip: per call, ${BATCHES} batches of ${BATCH} sequential calls (p50/p99 across batches)\n`);
console.log(table(rows));
console.log('\nworker = guest code -> isolate bridge -> KVService -> backend -> back; service = the host calling KVService directly.');

const out = { bench: 'kv', environment: await environment(), quick, results };
mkdirSync(join(benchDir, 'results'), { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const json = JSON.stringify(out, null, 2) + '\n';
writeFileSync(join(benchDir, 'results', `kv-${stamp}.json`), json);
writeFileSync(join(benchDir, 'results', 'latest-kv.json'), json);
console.log(`\nwrote bench/results/kv-${stamp}.json and bench/results/latest-kv.json`);

for (const config of configs) await config.kv.close();
runtime.close();
redis?.stop();
rmSync(dataDir, { recursive: true, force: true });
