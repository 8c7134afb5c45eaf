// Warm throughput: `npm run bench:warm` (add --quick for a smoke run).
//
// Each server runs as its own users run it, in a process of its own: `cinder serve` on its
// defaults (access log on, workers deployed through the admin API), workerd with a plain
// one-worker config (no experimental flag), node:http bare (the ingress ceiling) and with web
// Request/Response, and edge-runtime; plus Cinder's runtime embedded in a bench server with the
// log at warn, to show what the log and the CLI's wiring cost. Two workers: hello, and the Hono
// example answering a JSON route with a path parameter. Every server is started first, then
// `--rounds` interleaved rounds load each in turn (a warm-up, then `--seconds` of load), so a
// noisy minute hits every peer alike. The load generator is wrk when it is on PATH, autocannon (a
// devDependency) otherwise, in its own process. Reports medians over rounds of req/s and latency,
// and requests per CPU-second of the server's process tree (the figure that survives a noisy
// machine and a client sharing its cores).
//
// Output: a table on stdout, bench/results/warm-<timestamp>.json, bench/results/latest-warm.json.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { LeanClient } from './lib/client.mjs';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';
import { benchDir, environment, freePort, rootDir, startCinderServe, startNodeServer, startWorkerdConfig, treeCpuMs } from './lib/procs.mjs';
import { fmtMs, table } from './lib/stats.mjs';

const resultsDir = join(benchDir, 'results');

function hasWrk() {
  if (process.env.BENCH_LOAD_TOOL === 'autocannon') return false; // to try the fallback
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    // wrk --version exits 1 after printing its banner; ENOENT means it is not installed
    return error.code !== 'ENOENT';
  }
}

const toMs = (value, unit) => Number(value) * ({ us: 0.001, ms: 1, s: 1000, m: 60_000 }[unit] ?? 1);

function parseWrk(out) {
  const latency = {};
  for (const m of out.matchAll(/^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$/gm)) latency[`p${m[1]}`] = toMs(m[2], m[3]);
  const stats = /Latency\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s|m)/.exec(out);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return {
    rps,
    requests,
    p50: latency.p50,
    p75: latency.p75,
    p90: latency.p90,
    p99: latency.p99,
    mean: stats ? toMs(stats[1], stats[2]) : undefined,
    max: stats ? toMs(stats[5], stats[6]) : undefined,
    errors: socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx,
  };
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${err || out}`))));
  });
}

/** One load run against `url` with the given Host header, in a separate process. */
export async function runLoad({ url, host, seconds = 10, connections = 50, threads = Number(process.env.BENCH_WRK_THREADS ?? 1), tool = hasWrk() ? 'wrk' : 'autocannon', wrap = [] }) {
  if (tool === 'wrk') {
    // wrap: a command wrk runs under, for diagnosis only (`taskset -c 1`: the client off the
    // server's core; `nice -n -10`: the client ahead of the server for a CPU)
    const wrk = [...wrap, 'wrk', `-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '10s', '-H', `Host: ${host}`, url];
    const out = await run(wrk[0], wrk.slice(1));
    return { tool: `wrk -t${threads}`, ...parseWrk(out) };
  }
  const out = await run(process.execPath, [join(rootDir, 'node_modules', 'autocannon', 'autocannon.js'), '-c', String(connections), '-d', String(seconds), '-j', '-H', `host=${host}`, url]);
  const json = JSON.parse(out);
  return {
    tool: 'autocannon',
    rps: json.requests.average,
    requests: json.requests.total,
    p50: json.latency.p50,
    p75: json.latency.p75,
    p90: json.latency.p90,
    p99: json.latency.p99,
    mean: json.latency.average,
    max: json.latency.max,
    errors: json.errors + json.timeouts,
    non2xx: json.non2xx,
  };
}

const HELLO = { path: '/', expect: (body) => body.startsWith('Hello World') };
const HONO = { path: '/api/users/42?field=name&field=email', expect: (body) => body.startsWith('{"id":"42","fields":["name","email"]') };

async function workerdPlain(config) {
  const port = await freePort();
  const s = await startWorkerdConfig(config, { http: port });
  return { ...s, port };
}

const TARGETS = [
  { id: 'cinder', worker: 'hello', label: 'Cinder: cinder serve, defaults', ...HELLO, host: 'hello.bench', start: () => startCinderServe({ hello: join(buildDir, 'hello.mjs') }) },
  { id: 'workerd', worker: 'hello', label: 'workerd: plain config', ...HELLO, host: 'hello.bench', start: () => workerdPlain('warm-hello.capnp') },
  { id: 'cinder-hono', worker: 'hono', label: 'Cinder: cinder serve, defaults', ...HONO, host: 'hono.bench', start: () => startCinderServe({ hono: join(buildDir, 'hono-example.mjs') }) },
  // one serving process: what an operator of a machine with few cores may choose (`--processes 1`)
  { id: 'one-process-cinder', worker: 'hello', label: 'Cinder: cinder serve --processes 1', ...HELLO, host: 'hello.bench', start: () => startCinderServe({ hello: join(buildDir, 'hello.mjs') }, { args: ['--processes', '1'] }) },
  { id: 'one-process-hono', worker: 'hono', label: 'Cinder: cinder serve --processes 1', ...HONO, host: 'hono.bench', start: () => startCinderServe({ hono: join(buildDir, 'hono-example.mjs') }, { args: ['--processes', '1'] }) },
  // one serving process per core (the default before issue 24 round 6): the throughput setting
  { id: 'per-core-cinder', worker: 'hello', label: `Cinder: cinder serve --processes ${os.availableParallelism()}`, ...HELLO, host: 'hello.bench', start: () => startCinderServe({ hello: join(buildDir, 'hello.mjs') }, { args: ['--processes', String(os.availableParallelism())] }) },
  { id: 'per-core-hono', worker: 'hono', label: `Cinder: cinder serve --processes ${os.availableParallelism()}`, ...HONO, host: 'hono.bench', start: () => startCinderServe({ hono: join(buildDir, 'hono-example.mjs') }, { args: ['--processes', String(os.availableParallelism())] }) },
  { id: 'workerd-hono', worker: 'hono', label: 'workerd: plain config', ...HONO, host: 'hono.bench', start: () => workerdPlain('warm-hono.capnp') },
  {
    // The runtime without the CLI's wiring and with the log at warn: what those cost.
    id: 'cinder-embedded',
    worker: 'hello',
    label: 'Cinder runtime embedded, log at warn',
    ...HELLO,
    host: 'hello.bench',
    start: () => startNodeServer('cinder.mjs', { workers: { hello: join(buildDir, 'hello.mjs') } }),
  },
  { id: 'node-http', worker: 'hello', label: 'node:http, bare (ingress ceiling)', ...HELLO, host: 'hello.bench', start: () => startNodeServer('node-http.mjs', { mode: 'plain' }) },
  // the floor under the p99 (issue 24, round 8): a Node server of Cinder's shape (a second thread
  // answering each turn's requests as one JSON string, an access line a request) spending about
  // Cinder's CPU per hello request (serving thread ~38 µs, the other thread ~8), without the runtime
  { id: 'node-floor', worker: 'hello', label: 'Node floor: node:http + a thread, Cinder-sized CPU', ...HELLO, host: 'hello.bench', start: () => startNodeServer('node-floor.mjs', { threadUs: Number(process.env.FLOOR_THREAD_US ?? 8), mainUs: Number(process.env.FLOOR_MAIN_US ?? 20) }) },
  { id: 'node-http-web', worker: 'hello', label: 'node:http + web Request/Response', ...HELLO, host: 'hello.bench', start: () => startNodeServer('node-http.mjs', { mode: 'web' }) },
  { id: 'edge-runtime', worker: 'hello', label: 'edge-runtime (one EdgeRuntime)', ...HELLO, host: 'hello.bench', start: () => startNodeServer('edge-runtime.mjs') },
];

export function parseArgs(argv) {
  const args = { quick: false, seconds: 5, warmup: 2, rounds: 3, connections: 50, only: null };
  for (const arg of argv) {
    const [key, value] = arg.replace(/^--/, '').split('=');
    if (key === 'quick') args.quick = true;
    else if (key === 'seconds') args.seconds = Number(value);
    else if (key === 'warmup') args.warmup = Number(value);
    else if (key === 'connections') args.connections = Number(value);
    else if (key === 'rounds') args.rounds = Number(value);
    else if (key === 'only') args.only = value.split(',');
  }
  if (args.quick && !argv.some((a) => a.startsWith('--seconds='))) {
    args.seconds = 3;
    args.warmup = 1;
    if (!argv.some((a) => a.startsWith('--rounds='))) args.rounds = 1;
  }
  return args;
}

const median = (xs) => {
  const sorted = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN;
};

export async function runWarm(args, log = (s) => process.stderr.write(s + '\n')) {
  await buildWorkers();
  const tool = hasWrk() ? 'wrk' : 'autocannon';
  if (tool !== 'wrk') log('[warm] wrk is not on PATH: falling back to autocannon (a Node load generator; it saturates sooner than wrk, so req/s ceilings read lower)');
  const targets = TARGETS.filter((t) => !args.only || args.only.includes(t.id));
  const live = new Map();
  const failed = new Map();
  const rounds = new Map(targets.map((t) => [t.id, []]));
  try {
    for (const target of targets) {
      try {
        const server = await target.start();
        const client = new LeanClient({ port: server.port });
        const check = await client.get(target.path, target.host);
        client.close();
        if (check.status !== 200 || !target.expect(check.body)) throw new Error(`unexpected response ${check.status}: ${check.body.slice(0, 200)}`);
        live.set(target.id, server);
      } catch (error) {
        log(`[warm] ${target.id}: failed to start: ${error.message}`);
        failed.set(target.id, String(error.message));
      }
    }
    for (let round = 1; round <= args.rounds; round++) {
      for (const target of targets) {
        const server = live.get(target.id);
        if (!server) continue;
        const url = `http://127.0.0.1:${server.port}${target.path}`;
        try {
          await runLoad({ url, host: target.host, seconds: args.warmup, connections: args.connections, tool });
          const cpuBefore = treeCpuMs(server.pid);
          const load = await runLoad({ url, host: target.host, seconds: args.seconds, connections: args.connections, tool });
          const cpuMs = treeCpuMs(server.pid) - cpuBefore;
          const entry = { round, ...load, cpuMs, reqPerCpuSecond: load.requests / (cpuMs / 1000), loadavg1: Math.round(os.loadavg()[0] * 100) / 100 };
          rounds.get(target.id).push(entry);
          log(`[warm] round ${round} ${target.id.padEnd(16)} ${Math.round(entry.rps)} req/s  p50 ${fmtMs(entry.p50)}  p99 ${fmtMs(entry.p99)} ms  ${Math.round(entry.reqPerCpuSecond)} req/CPU-s${entry.errors || entry.non2xx ? `  errors ${entry.errors} non-2xx ${entry.non2xx}` : ''}`);
        } catch (error) {
          log(`[warm] round ${round} ${target.id}: failed: ${error.message}`);
          rounds.get(target.id).push({ round, error: String(error.message) });
        }
      }
    }
  } finally {
    for (const server of live.values()) {
      server.rssMbAtEnd = Math.round(server.rssMb());
      await server.stop();
    }
  }
  const results = targets.map((target) => {
    if (failed.has(target.id)) return { target: target.id, worker: target.worker, label: target.label, error: failed.get(target.id) };
    const ok = rounds.get(target.id).filter((r) => !r.error);
    if (!ok.length) return { target: target.id, worker: target.worker, label: target.label, error: rounds.get(target.id)[0]?.error ?? 'no rounds' };
    const sum = (key) => ok.reduce((a, r) => a + (r[key] ?? 0), 0);
    return {
      target: target.id,
      worker: target.worker,
      label: target.label,
      rounds: ok,
      rps: median(ok.map((r) => r.rps)),
      p50: median(ok.map((r) => r.p50)),
      p90: median(ok.map((r) => r.p90)),
      p99: median(ok.map((r) => r.p99)),
      max: Math.max(...ok.map((r) => r.max ?? 0)),
      reqPerCpuSecond: sum('requests') / (sum('cpuMs') / 1000),
      errors: sum('errors'),
      non2xx: sum('non2xx'),
      serverRssMb: live.get(target.id)?.rssMbAtEnd,
    };
  });
  return { kind: 'warm', env: await environment(), args, tool, results };
}

export function warmTable(warm) {
  const rows = [['worker', 'server', 'req/s', 'p50', 'p90', 'p99', 'max', 'req per CPU-s', 'RSS MB', 'notes']];
  for (const r of warm.results) {
    if (r.error) {
      rows.push([r.worker, r.label, '-', '-', '-', '-', '-', '-', '-', `FAILED: ${r.error.slice(0, 60)}`]);
      continue;
    }
    const notes = [];
    if (r.errors) notes.push(`${r.errors} socket errors`);
    if (r.non2xx) notes.push(`${r.non2xx} non-2xx`);
    rows.push([r.worker, r.label, Math.round(r.rps).toLocaleString('en-US'), fmtMs(r.p50), fmtMs(r.p90), fmtMs(r.p99), fmtMs(r.max), Math.round(r.reqPerCpuSecond).toLocaleString('en-US'), r.serverRssMb ?? '-', notes.join(', ')]);
  }
  return table(rows);
}

export function writeWarm(warm) {
  mkdirSync(resultsDir, { recursive: true });
  const stamp = warm.env.date.replace(/[:.]/g, '-');
  const json = JSON.stringify(warm, null, 1);
  writeFileSync(join(resultsDir, `warm-${stamp}.json`), json);
  writeFileSync(join(resultsDir, 'latest-warm.json'), json);
  return [`bench/results/warm-${stamp}.json`, 'bench/results/latest-warm.json'];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = parseArgs(process.argv.slice(2));
  const warm = await runWarm(args);
  console.log(`\nWarm throughput (${warm.tool}, ${args.connections} connections, medians of ${args.rounds} interleaved rounds of ${args.seconds} s, loopback; latency in ms)`);
  console.log(warmTable(warm));
  console.log(`\nwrote ${writeWarm(warm).join(', ')}`);
}
