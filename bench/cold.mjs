// Cold-start benchmark: `npm run bench:cold` (add --quick for a smoke run).
//
// A cold start is a request for a worker that has no live isolate. For every configuration of
// Cinder (the ablation) and every peer, in one run on this machine, the bench sends requests one
// at a time over one kept-alive connection from a lean raw-socket client, each of them cold, and
// records the client-observed latency and, where the server reports it, the server-side time
// (Server-Timing `total`: request received -> response headers written; `cold`: bringing the
// isolate up). Cinder's worker stays deployed and its isolate is evicted between requests (the
// bench asks over IPC, off the measured path), as happens when an idle worker is reclaimed;
// workerd gets a new Worker Loader id per request; edge-runtime a new EdgeRuntime; the bare
// isolated-vm peer a new isolate.
//
// Pace: one cold start every ~25 ms per row by default (--gap-ms=25), about 40 a second: a steady
// rate the ready pool can keep up with (each pooled isolate holds the main thread for ~7 ms of
// `new Isolate`). `--gap-ms=1` measures a cold-start storm instead, where the pool runs dry and
// cold starts build their isolate inline; the table's notes count those pool misses.
//
// Then the storm and rate sweep (runStorm below; `--no-storm` skips it, `--storm-only` runs only
// it): 300 different hello workers cold back to back, and at 25-400 cold starts a second.
//
// Output: a table on stdout, bench/results/cold-<timestamp>.json, bench/results/latest-cold.json
// and bench/results/cold.svg.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { LeanClient, parseServerTiming } from './lib/client.mjs';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';
import { benchDir, environment, freePort, startNodeServer, startWorkerd } from './lib/procs.mjs';
import { fmtMs, sleep, summarize, table } from './lib/stats.mjs';
import { latencyPlot } from './lib/svg.mjs';

export const resultsDir = join(benchDir, 'results');

const WORKERS = {
  hello: { label: 'hello', path: '/' },
  hono: { label: 'Hono + highlight.js (~1.2 MB)', path: '/api/highlight?lang=javascript' },
  api: { label: 'API worker: Hono + cors/etag/secureHeaders, 40 routes, zod, jose (~150 KB)', path: '/api/users/7' },
};

/** Cinder configurations: the ablation. */
const CINDER_CONFIGS = [
  { id: 'cinder', label: 'Cinder: all on', options: {} },
  { id: 'cinder-no-pool', label: 'Cinder: no pool', options: { pool: { enabled: false } } },
  { id: 'cinder-no-snapshot', label: 'Cinder: no snapshot', options: { snapshot: false } },
  { id: 'cinder-no-code-cache', label: 'Cinder: no worker code cache', options: { workerCodeCache: false } },
  {
    id: 'cinder-all-off',
    label: 'Cinder: all off',
    options: { pool: { enabled: false }, snapshot: false, codeCache: false, workerCodeCache: false },
  },
  {
    // Each worker cold-starts from its own deployment snapshot (its top level already run), as
    // `cinder serve` does for workers whose plain load is slow or large (issue 23).
    // No spare isolates: every cold start deserializes the snapshot (what a version's first cold
    // start costs, or one after scale to zero).
    id: 'cinder-deployment-snapshot',
    label: 'Cinder: from the deployment snapshot',
    options: { deploymentSnapshots: true, runtime: { deploymentSnapshots: { spares: 0 } } },
    workers: ['hono', 'api'],
  },
  {
    // As `cinder serve` runs: a version that cold-starts again within 30 s gets one spare
    // isolate made from its snapshot ahead of its next cold start (DeploymentSnapshotIsolates).
    id: 'cinder-deployment-spare',
    label: 'Cinder: deployment snapshot, 1 spare',
    options: { deploymentSnapshots: true },
    workers: ['hono', 'api'],
  },
  {
    // At the live-worker cap (1 here): every cold start evicts another worker's isolate. Two
    // copies of the hello worker take turns, so each cold request makes room by retiring the
    // other, as on a server holding as many workers as it may.
    id: 'cinder-at-cap',
    label: 'Cinder: at the live-worker cap',
    options: { runtime: { maxLiveWorkers: 1 } },
    atCapacity: true,
  },
];

// Each target knows how to start its server and how to ask it for a cold or a warm response.
function cinderTarget(config) {
  return {
    id: config.id,
    label: config.label,
    group: 'cinder',
    workers: config.workers ?? (config.atCapacity ? ['hello'] : ['hello', 'hono', 'api']),
    async start() {
      const hello = join(buildDir, 'hello.mjs');
      const server = await startNodeServer('cinder.mjs', {
        ...config.options,
        workers: config.atCapacity ? { hello, 'hello-b': hello } : { hello, hono: join(buildDir, 'hono-app.mjs'), api: join(buildDir, 'api-worker.mjs') },
      });
      let live = 'hello'; // at the cap: the copy that holds the one live isolate
      return {
        port: server.port,
        host: (w) => `${(live = w)}.bench`,
        // at the cap, each cold request goes to the copy that is not live, and evicts the other
        coldHost: config.atCapacity ? (w) => `${(live = live === w ? `${w}-b` : w)}.bench` : undefined,
        coldPath: (w) => WORKERS[w].path,
        warmPath: (w) => WORKERS[w].path,
        afterCold: config.atCapacity ? undefined : (w) => server.call({ op: 'evict', name: w }),
        stats: () => server.call({ op: 'stats' }),
        idle: async () => {
          const { pool } = await server.call({ op: 'stats' });
          return !pool || pool.ready >= pool.target;
        },
        info: { source: server.info.source },
        stop: () => server.stop(),
      };
    },
  };
}

let workerdSeq = 0;
const workerdTarget = {
  id: 'workerd',
  label: 'workerd: new Worker Loader isolate',
  group: 'peer',
  workers: ['hello', 'hono', 'api'],
  async start() {
    const ports = { loader: await freePort(), hello: await freePort() };
    const server = await startWorkerd(ports);
    return {
      port: ports.loader,
      host: () => 'bench',
      coldPath: (w) => `/cold/${w}/${++workerdSeq}${WORKERS[w].path}`,
      warmPath: (w) => `/warm/${w}${WORKERS[w].path}`,
      stats: async () => ({ rssMb: server.rssMb() }),
      stop: () => server.stop(),
    };
  },
};

function nodePeer(id, label, script, workers) {
  return {
    id,
    label,
    group: 'peer',
    workers,
    async start() {
      const server = await startNodeServer(script);
      return {
        port: server.port,
        host: (w) => `${w}.bench`,
        coldPath: (w) => `/cold${WORKERS[w].path}`,
        warmPath: (w) => WORKERS[w].path,
        stats: async () => ({ rssMb: server.rssMb() }),
        stop: () => server.stop(),
      };
    },
  };
}

export const TARGETS = [
  ...CINDER_CONFIGS.map(cinderTarget),
  workerdTarget,
  nodePeer('edge-runtime', 'edge-runtime: new EdgeRuntime (vm)', 'edge-runtime.mjs', ['hello', 'hono']),
  nodePeer('ivm-bare', 'isolated-vm: bare new isolate', 'ivm-bare.mjs', ['hello']),
];

export function parseArgs(argv) {
  const args = { quick: false, n: 1000, nHono: 100, warm: 200, gapMs: 25, rounds: 5, only: null, workers: null, storm: true, stormOnly: false, stormWorkers: 300, rates: [25, 50, 100, 200, 400] };
  for (const arg of argv) {
    const [key, value] = arg.replace(/^--/, '').split('=');
    if (key === 'quick') args.quick = true;
    else if (key === 'n') args.n = Number(value);
    else if (key === 'n-hono') args.nHono = Number(value);
    else if (key === 'warm') args.warm = Number(value);
    else if (key === 'gap-ms') args.gapMs = Number(value);
    else if (key === 'rounds') args.rounds = Math.max(1, Number(value));
    else if (key === 'only') args.only = value.split(',');
    else if (key === 'workers') args.workers = value.split(',');
    else if (key === 'no-storm') args.storm = false;
    else if (key === 'storm-only') args.stormOnly = true;
    else if (key === 'storm-workers') args.stormWorkers = Number(value);
    else if (key === 'rates') args.rates = value.split(',').map(Number);
  }
  if (args.quick) {
    if (!argv.some((a) => a.startsWith('--n='))) args.n = 100;
    if (!argv.some((a) => a.startsWith('--n-hono='))) args.nHono = 20;
    if (!argv.some((a) => a.startsWith('--warm='))) args.warm = 50;
  }
  return args;
}

async function measure(client, instance, worker, count, kind, gapMs) {
  const samples = { client: [], total: [], cold: [], cpu: [] };
  let errors = 0;
  let notCold = 0;
  let firstError = null;
  for (let i = 0; i < count; i++) {
    const path = kind === 'cold' ? instance.coldPath(worker) : instance.warmPath(worker);
    const host = kind === 'cold' && instance.coldHost ? instance.coldHost(worker) : instance.host(worker);
    const response = await client.get(path, host);
    if (response.status !== 200) {
      errors++;
      firstError ??= `${response.status} ${response.body.slice(0, 200)}`;
    }
    samples.client.push(response.ms);
    const timing = parseServerTiming(response.headers['server-timing']);
    if (timing.total !== undefined) samples.total.push(timing.total);
    if (timing.cpu !== undefined) samples.cpu.push(timing.cpu);
    if (timing.cold !== undefined) samples.cold.push(timing.cold);
    else if (kind === 'cold' && timing.total !== undefined) notCold++;
    if (kind === 'cold') {
      if (instance.afterCold) await instance.afterCold(worker);
      if (gapMs > 0) await sleep(gapMs);
    }
  }
  return { samples, errors, notCold, firstError };
}

const round = (values) => values.map((v) => Math.round(v * 1000) / 1000);

function mergeMeasure(into, part) {
  for (const key of Object.keys(into.samples)) into.samples[key].push(...part.samples[key]);
  into.errors += part.errors;
  into.notCold += part.notCold;
  into.firstError ??= part.firstError;
}
const emptyMeasure = () => ({ samples: { client: [], total: [], cold: [], cpu: [] }, errors: 0, notCold: 0, firstError: null });

/**
 * Run the cold-start bench; returns the result object (also written to disk by main).
 *
 * Every server is started first and stays up; the measurement then goes round-robin in
 * `args.rounds` rounds (each row gets n/rounds cold starts per round), so that a machine whose
 * load drifts during the run (other processes) affects every row alike instead of whichever
 * happened to run at a bad moment. Between chunks the bench waits for the server to go idle
 * (Cinder: its pool refilled) so that one row's background work does not land on the next.
 */
export async function runCold(args, log = (s) => process.stderr.write(s + '\n')) {
  const built = await buildWorkers();
  log(`[cold] workers built: hello, hono-app ${(built.hono.bytes / 1024).toFixed(0)} KiB, api-worker ${(built.api.bytes / 1024).toFixed(0)} KiB`);
  const targets = TARGETS.filter((t) => !args.only || args.only.some((o) => t.id === o || t.id.startsWith(o)));
  const results = [];
  const rows = [];
  const running = [];
  try {
    for (const target of targets) {
      let instance;
      try {
        instance = await target.start();
      } catch (error) {
        log(`[cold] ${target.id}: could not start: ${error.message}`);
        results.push({ target: target.id, label: target.label, group: target.group, error: String(error.message) });
        continue;
      }
      const client = new LeanClient({ port: instance.port });
      running.push({ target, instance, client });
      for (const worker of target.workers) {
        if (args.workers && !args.workers.includes(worker)) continue;
        const n = worker === 'hello' ? args.n : args.nHono;
        rows.push({ target, instance, client, worker, n, cold: emptyMeasure(), warm: emptyMeasure(), loads: [], seconds: 0, failed: null });
      }
    }
    // JIT warm-up of every server and the client on both paths (discarded), then the warm
    // baseline of each row.
    for (const row of rows) {
      try {
        const { client, instance, worker, n } = row;
        await measure(client, instance, worker, Math.min(20, n), 'warm', 0);
        await measure(client, instance, worker, Math.min(10, n), 'cold', args.gapMs);
        mergeMeasure(row.warm, await measure(client, instance, worker, worker === 'hello' ? args.warm : Math.ceil(args.warm / 2), 'warm', 0));
        if (instance.afterCold) await instance.afterCold(worker); // the warm phase left it live
        await idle(instance);
      } catch (error) {
        row.failed = String(error.stack ?? error);
        log(`[cold] ${row.target.id} ${row.worker}: failed: ${row.failed}`);
      }
    }
    for (let r = 0; r < args.rounds; r++) {
      for (const row of rows) {
        if (row.failed) continue;
        const chunk = Math.floor(row.n / args.rounds) + (r < row.n % args.rounds ? 1 : 0);
        const started = Date.now();
        row.loads.push(os.loadavg()[0]);
        try {
          mergeMeasure(row.cold, await measure(row.client, row.instance, row.worker, chunk, 'cold', args.gapMs));
          await idle(row.instance);
        } catch (error) {
          row.failed = String(error.stack ?? error);
          log(`[cold] ${row.target.id} ${row.worker}: failed: ${row.failed}`);
        }
        row.seconds += (Date.now() - started) / 1000;
      }
      log(`[cold] round ${r + 1}/${args.rounds} done (load ${os.loadavg()[0].toFixed(2)})`);
    }
    for (const row of rows) {
      const { target, instance, worker, cold, warm } = row;
      if (row.failed && !cold.samples.client.length) {
        results.push({ target: target.id, label: target.label, group: target.group, worker, error: row.failed });
        continue;
      }
      const stats = instance.stats ? await instance.stats() : null;
      const entry = {
        target: target.id,
        label: target.label,
        group: target.group,
        worker,
        n: cold.samples.client.length,
        errors: cold.errors + warm.errors,
        firstError: cold.firstError ?? warm.firstError,
        failed: row.failed,
        notCold: cold.notCold,
        client: summarize(cold.samples.client),
        serverTotal: summarize(cold.samples.total),
        serverCold: summarize(cold.samples.cold),
        serverCpu: summarize(cold.samples.cpu),
        warmClient: summarize(warm.samples.client),
        warmServerTotal: summarize(warm.samples.total),
        stats,
        info: instance.info ?? null,
        seconds: row.seconds,
        loadavg1: Math.round((row.loads.reduce((a, b) => a + b, 0) / Math.max(1, row.loads.length)) * 100) / 100,
        samples: { client: round(cold.samples.client), serverTotal: round(cold.samples.total), serverCold: round(cold.samples.cold) },
      };
      results.push(entry);
      log(
        `[cold] ${target.id.padEnd(22)} ${worker.padEnd(5)} n=${entry.n} client p50 ${fmtMs(entry.client?.p50)} p99 ${fmtMs(entry.client?.p99)}` +
          (entry.serverTotal ? ` | server p50 ${fmtMs(entry.serverTotal.p50)} p99 ${fmtMs(entry.serverTotal.p99)}` : '') +
          ` | warm p50 ${fmtMs(entry.warmClient?.p50)}` +
          (entry.errors ? ` | ${entry.errors} errors: ${entry.firstError}` : '') +
          (entry.notCold ? ` | ${entry.notCold} not cold` : ''),
      );
    }
  } finally {
    for (const { client, instance } of running) {
      client.close();
      await instance.stop();
    }
  }
  return { kind: 'cold', env: await environment(), args, workerBytes: { hello: built.hello.esm.length, hono: built.hono.bytes }, results };
}

// --- storm and rate sweep ------------------------------------------------------------------------
//
// Issue 23's case: `stormWorkers` (300) different hello workers, each cold once, back to back.
// "storm" sends the next cold request as soon as the last one answered (no pause); the sweep paces
// them at a fixed rate (cold starts per second; a request due while the last is still out goes as
// soon as it is answered, so a rate past what the server sustains turns into a storm). Cinder:
// every worker deployed up front (distinct sources), all evicted between passes; workerd: a new
// Worker Loader id per request. Bring-up is Server-Timing `cold` (Cinder only; workerd reports no
// server timing, so its row shows client time).
const STORM_TARGETS = ['cinder', 'workerd'];

async function stormPass(client, instance, count, rate) {
  const samples = { client: [], cold: [], total: [] };
  let errors = 0;
  let firstError = null;
  const interval = rate ? 1000 / rate : 0;
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const due = started + i * interval;
    const wait = due - performance.now();
    if (wait > 0.5) await sleep(wait);
    const response = await client.get(instance.stormPath(i), instance.stormHost(i));
    if (response.status !== 200) {
      errors++;
      firstError ??= `${response.status} ${response.body.slice(0, 200)}`;
    }
    samples.client.push(response.ms);
    const timing = parseServerTiming(response.headers['server-timing']);
    if (timing.cold !== undefined) samples.cold.push(timing.cold);
    if (timing.total !== undefined) samples.total.push(timing.total);
  }
  const seconds = (performance.now() - started) / 1000;
  return { samples, errors, firstError, achievedRate: count / seconds };
}

export async function runStorm(args, log = (s) => process.stderr.write(s + '\n')) {
  await buildWorkers();
  const count = args.quick ? Math.min(100, args.stormWorkers) : args.stormWorkers;
  const out = [];
  for (const id of STORM_TARGETS) {
    if (args.only && !args.only.some((o) => id === o || id.startsWith(o))) continue;
    let instance;
    let stop;
    const hello = readFileSync(join(buildDir, 'hello.mjs'), 'utf8');
    try {
      if (id === 'cinder') {
        const server = await startNodeServer('cinder.mjs', { workers: {} });
        await server.call({ op: 'deployMany', prefix: 's', count, code: hello });
        instance = {
          port: server.port,
          stormHost: (i) => `s${i}.bench`,
          stormPath: () => '/',
          reset: async () => {
            await server.call({ op: 'evictMany', prefix: 's', count });
            const deadline = Date.now() + 5000;
            while (Date.now() < deadline) {
              const { pool } = await server.call({ op: 'stats' });
              if (pool.ready >= pool.target && pool.building === 0) break;
              await sleep(50);
            }
          },
          stats: () => server.call({ op: 'stats' }),
        };
        stop = () => server.stop();
      } else {
        const ports = { loader: await freePort(), hello: await freePort() };
        const server = await startWorkerd(ports);
        instance = { port: ports.loader, stormHost: () => 'bench', stormPath: () => `/cold/hello/${++workerdSeq}/`, reset: () => sleep(200), stats: async () => null };
        stop = () => server.stop();
      }
    } catch (error) {
      log(`[storm] ${id}: could not start: ${error.message}`);
      continue;
    }
    const client = new LeanClient({ port: instance.port });
    try {
      await stormPass(client, instance, Math.min(20, count), 0); // JIT warm-up, discarded
      await instance.reset();
      for (const rate of [0, ...args.rates]) {
        const before = (await instance.stats())?.pool;
        const pass = await stormPass(client, instance, count, rate);
        const after = (await instance.stats())?.pool;
        const row = {
          target: id,
          rate: rate || 'storm',
          achievedRate: Math.round(pass.achievedRate),
          n: pass.samples.client.length,
          errors: pass.errors,
          firstError: pass.firstError,
          misses: before && after ? after.misses - before.misses : null,
          client: summarize(pass.samples.client),
          serverCold: summarize(pass.samples.cold),
          serverTotal: summarize(pass.samples.total),
          loadavg1: os.loadavg()[0],
        };
        out.push(row);
        log(`[storm] ${id.padEnd(8)} ${String(row.rate).padStart(5)}/s (got ${row.achievedRate}/s) bring-up p50 ${fmtMs(row.serverCold?.p50)} p99 ${fmtMs(row.serverCold?.p99)} | client p50 ${fmtMs(row.client?.p50)} p99 ${fmtMs(row.client?.p99)}${row.misses ? ` | ${row.misses} pool misses` : ''}${row.errors ? ` | ${row.errors} errors: ${row.firstError}` : ''}`);
        await instance.reset();
      }
    } finally {
      client.close();
      await stop();
    }
  }
  return out;
}

export function stormTable(storm) {
  const rows = [['peer', 'rate/s asked', 'got/s', 'n', 'errors', 'bring-up p50', 'bring-up p99', 'client p50', 'client p99', 'pool misses']];
  for (const r of storm) {
    rows.push([r.target, r.rate, r.achievedRate, r.n, r.errors, fmtMs(r.serverCold?.p50), fmtMs(r.serverCold?.p99), fmtMs(r.client?.p50), fmtMs(r.client?.p99), r.misses ?? '-']);
  }
  return table(rows);
}

/** Cold starts per second against latency: one row per peer and rate (bring-up for Cinder,
 *  client time for workerd, which reports no server timing); the knee is where the rows widen. */
export function stormPlot(storm, env) {
  const panel = (id, title) => ({
    title,
    rows: storm
      .filter((r) => r.target === id && r.client)
      .map((r) => ({ label: `${id} ${r.rate === 'storm' ? 'storm' : r.rate + '/s'} (got ${r.achievedRate}/s)`, client: r.client, server: r.serverCold ?? undefined, highlight: r.rate === 'storm' })),
  });
  return latencyPlot({
    title: 'Cold starts per second vs latency: 300 different hello workers, each cold once',
    subtitle: `${env.date.slice(0, 16).replace('T', ' ')} · ${env.cpus} cores · blue: client, orange: bring-up (Server-Timing cold) · box p25-p75, dot p99`,
    panels: [panel('cinder', 'Cinder: all on'), panel('workerd', 'workerd: new Worker Loader isolate (client)')].filter((p) => p.rows.length),
    targets: [
      { ms: 0.5, label: 'target p50 0.5 ms' },
      { ms: 2, label: 'target p99 2 ms' },
    ],
    minMs: 0.1,
    maxMs: 200,
  });
}

/** Wait until the server has no background work left from the last chunk (bounded). */
async function idle(instance) {
  if (!instance.idle) return sleep(50);
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && !(await instance.idle())) await sleep(20);
}

export function coldTable(cold) {
  const rows = [['config / peer', 'worker', 'n', 'client p50', 'p90', 'p99', 'max', 'server p50', 'server p99', 'bring-up p50', 'warm p50', 'notes']];
  for (const r of cold.results) {
    if (r.error && !r.client) {
      rows.push([r.label, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', `FAILED: ${r.error.slice(0, 60)}`]);
      continue;
    }
    const notes = [];
    if (r.errors) notes.push(`${r.errors} errors`);
    if (r.notCold) notes.push(`${r.notCold} not cold`);
    if (r.stats?.pool?.misses) notes.push(`${r.stats.pool.misses} pool misses`);
    if (r.loadavg1 > cold.env.cpus) notes.push(`load ${r.loadavg1}`);
    if (r.info?.source && r.info.source !== 'snapshot' && !r.target.includes('snapshot') && !r.target.includes('all-off')) notes.push(`source=${r.info.source}!`);
    rows.push([
      r.label,
      r.worker,
      r.n,
      fmtMs(r.client?.p50),
      fmtMs(r.client?.p90),
      fmtMs(r.client?.p99),
      fmtMs(r.client?.max),
      fmtMs(r.serverTotal?.p50),
      fmtMs(r.serverTotal?.p99),
      fmtMs(r.serverCold?.p50),
      fmtMs(r.warmClient?.p50),
      notes.join(', '),
    ]);
  }
  return table(rows);
}

export function coldPlot(cold) {
  const panels = Object.keys(WORKERS)
    .map((worker) => ({
      title: `${worker === 'hello' ? 'hello worker' : 'realistic worker: ' + WORKERS[worker].label} — cold start latency`,
      rows: cold.results
        .filter((r) => r.worker === worker && r.client)
        .map((r) => ({ label: r.label, client: r.client, server: r.serverTotal, highlight: r.target === 'cinder' })),
      // The targets are stated for the hello worker.
      targets:
        worker === 'hello'
          ? [
              { ms: 0.5, label: 'target p50 0.5 ms' },
              { ms: 2, label: 'target p99 2 ms' },
            ]
          : [],
    }))
    .filter((p) => p.rows.length);
  const e = cold.env;
  const loads = cold.results.map((r) => r.loadavg1).filter((x) => x != null);
  const load = loads.length ? ` · load avg ${(loads.reduce((a, b) => a + b, 0) / loads.length).toFixed(1)} during the run` : '';
  return latencyPlot({
    title: 'Cinder cold starts vs peers (one run, same machine)',
    subtitle: `${e.date.slice(0, 16).replace('T', ' ')} · ${e.cpus} cores · Node ${e.node} · isolated-vm ${e.isolatedVm} · workerd ${e.workerd} · n=${cold.args.n} hello / ${cold.args.nHono} hono per row${load}`,
    panels,
    minMs: 0.1,
    maxMs: 500,
  });
}

export function writeCold(cold) {
  mkdirSync(resultsDir, { recursive: true });
  const stamp = cold.env.date.replace(/[:.]/g, '-');
  const json = JSON.stringify(cold, null, 1);
  writeFileSync(join(resultsDir, `cold-${stamp}.json`), json);
  writeFileSync(join(resultsDir, 'latest-cold.json'), json);
  const files = [`bench/results/cold-${stamp}.json`, 'bench/results/latest-cold.json'];
  if (cold.results.length) {
    writeFileSync(join(resultsDir, 'cold.svg'), coldPlot(cold));
    files.push('bench/results/cold.svg');
  }
  if (cold.storm?.length) {
    writeFileSync(join(resultsDir, 'cold-storm.svg'), stormPlot(cold.storm, cold.env));
    files.push('bench/results/cold-storm.svg');
  }
  return files;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = parseArgs(process.argv.slice(2));
  const cold = args.stormOnly ? { kind: 'cold', env: await environment(), args, results: [] } : await runCold(args);
  if (args.storm || args.stormOnly) cold.storm = await runStorm(args);
  if (cold.results.length) {
    console.log('\nCold starts (ms; client = raw socket on loopback, server = Server-Timing total, bring-up = Server-Timing cold)');
    console.log(coldTable(cold));
  }
  if (cold.storm?.length) {
    console.log(`\nStorm and rate sweep: ${args.quick ? Math.min(100, args.stormWorkers) : args.stormWorkers} different hello workers, each cold once per pass (ms)`);
    console.log(stormTable(cold.storm));
  }
  const files = writeCold(cold);
  console.log(`\nwrote ${files.join(', ')}`);
}
