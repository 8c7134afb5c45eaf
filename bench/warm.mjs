// Warm throughput: `npm run bench:warm` (add --quick for a smoke run).
//
// The hello worker, 50 connections, 10 s (after a 2 s warm-up), against Cinder (all on), workerd
// serving the same hello worker, a bare node:http server (the ingress ceiling), node:http that
// builds web Request/Response objects, and edge-runtime — one at a time, in one run. The load
// generator is wrk when it is on PATH, autocannon (a devDependency) otherwise; either way it runs
// in its own process. Reports req/s, p50/p90/p99/max latency, and the server's CPU use and RSS.
//
// Output: a table on stdout, bench/results/warm-<timestamp>.json, bench/results/latest-warm.json.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { LeanClient } from './lib/client.mjs';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';
import { benchDir, environment, freePort, rootDir, startNodeServer, startWorkerd } from './lib/procs.mjs';
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
export async function runLoad({ url, host, seconds = 10, connections = 50, threads = Number(process.env.BENCH_WRK_THREADS ?? 1), tool = hasWrk() ? 'wrk' : 'autocannon' }) {
  if (tool === 'wrk') {
    const out = await run('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '10s', '-H', `Host: ${host}`, url]);
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

/** utime + stime of a process, in ms (from /proc). */
function cpuMsOf(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks at 100 Hz
  } catch {
    return NaN;
  }
}

const TARGETS = [
  {
    id: 'cinder',
    label: 'Cinder (hello worker)',
    async start() {
      const s = await startNodeServer('cinder.mjs', { workers: { hello: join(buildDir, 'hello.mjs') } });
      return { ...s, host: 'hello.bench', path: '/' };
    },
  },
  {
    // The runtime spreads a saturated worker over more isolates (threads); this row pins it to one.
    id: 'cinder-1-isolate',
    label: 'Cinder, one isolate per worker',
    async start() {
      const s = await startNodeServer('cinder.mjs', { workers: { hello: join(buildDir, 'hello.mjs') }, runtime: { maxIsolatesPerWorker: 1 } });
      return { ...s, host: 'hello.bench', path: '/' };
    },
  },
  {
    id: 'workerd',
    label: 'workerd (same hello worker)',
    async start() {
      const ports = { loader: await freePort(), hello: await freePort() };
      const s = await startWorkerd(ports);
      return { ...s, port: ports.hello, host: 'hello.bench', path: '/' };
    },
  },
  {
    id: 'node-http',
    label: 'node:http, bare (ingress ceiling)',
    async start() {
      const s = await startNodeServer('node-http.mjs', { mode: 'plain' });
      return { ...s, host: 'hello.bench', path: '/' };
    },
  },
  {
    id: 'node-http-web',
    label: 'node:http + web Request/Response',
    async start() {
      const s = await startNodeServer('node-http.mjs', { mode: 'web' });
      return { ...s, host: 'hello.bench', path: '/' };
    },
  },
  {
    id: 'edge-runtime',
    label: 'edge-runtime (one EdgeRuntime)',
    async start() {
      const s = await startNodeServer('edge-runtime.mjs');
      return { ...s, host: 'hello.bench', path: '/' };
    },
  },
];

export function parseArgs(argv) {
  const args = { quick: false, seconds: 10, warmup: 2, connections: 50, only: null };
  for (const arg of argv) {
    const [key, value] = arg.replace(/^--/, '').split('=');
    if (key === 'quick') args.quick = true;
    else if (key === 'seconds') args.seconds = Number(value);
    else if (key === 'warmup') args.warmup = Number(value);
    else if (key === 'connections') args.connections = Number(value);
    else if (key === 'only') args.only = value.split(',');
  }
  if (args.quick && !argv.some((a) => a.startsWith('--seconds='))) {
    args.seconds = 3;
    args.warmup = 1;
  }
  return args;
}

export async function runWarm(args, log = (s) => process.stderr.write(s + '\n')) {
  await buildWorkers();
  const tool = hasWrk() ? 'wrk' : 'autocannon';
  if (tool !== 'wrk') log('[warm] wrk is not on PATH: falling back to autocannon (a Node load generator; it saturates sooner than wrk, so req/s ceilings read lower)');
  const results = [];
  for (const target of TARGETS.filter((t) => !args.only || args.only.includes(t.id))) {
    let server;
    try {
      server = await target.start();
      const client = new LeanClient({ port: server.port });
      const check = await client.get(server.path, server.host);
      client.close();
      if (check.status !== 200 || !check.body.startsWith('Hello World')) throw new Error(`unexpected response ${check.status}: ${check.body.slice(0, 200)}`);
      const url = `http://127.0.0.1:${server.port}${server.path}`;
      await runLoad({ url, host: server.host, seconds: args.warmup, connections: args.connections, tool });
      const cpuBefore = cpuMsOf(server.pid);
      const load = await runLoad({ url, host: server.host, seconds: args.seconds, connections: args.connections, tool });
      const cpuMs = cpuMsOf(server.pid) - cpuBefore;
      const serverStats = target.id.startsWith('cinder') ? await server.call({ op: 'stats' }) : null;
      const entry = {
        target: target.id,
        label: target.label,
        ...load,
        serverCpuPercent: Math.round((cpuMs / (args.seconds * 1000)) * 100),
        serverRssMb: Math.round(server.rssMb()),
        loadavg1: Math.round(os.loadavg()[0] * 100) / 100,
        serverStats,
      };
      results.push(entry);
      log(`[warm] ${target.id.padEnd(14)} ${Math.round(entry.rps)} req/s  p50 ${fmtMs(entry.p50)}  p99 ${fmtMs(entry.p99)}  max ${fmtMs(entry.max)} ms  server CPU ${entry.serverCpuPercent}%${entry.errors || entry.non2xx ? `  errors ${entry.errors} non-2xx ${entry.non2xx}` : ''}`);
    } catch (error) {
      log(`[warm] ${target.id}: failed: ${error.message}`);
      results.push({ target: target.id, label: target.label, error: String(error.message) });
    } finally {
      await server?.stop();
    }
  }
  return { kind: 'warm', env: await environment(), args, tool, results };
}

export function warmTable(warm) {
  const rows = [['server', 'req/s', 'p50', 'p90', 'p99', 'max', 'server CPU', 'RSS MB', 'notes']];
  for (const r of warm.results) {
    if (r.error) {
      rows.push([r.label, '-', '-', '-', '-', '-', '-', '-', `FAILED: ${r.error.slice(0, 60)}`]);
      continue;
    }
    const notes = [];
    if (r.serverStats) notes.push(`${r.serverStats.liveIsolates} isolate(s)`);
    if (r.loadavg1 > warm.env.cpus) notes.push(`load ${r.loadavg1}`);
    if (r.errors) notes.push(`${r.errors} socket errors`);
    if (r.non2xx) notes.push(`${r.non2xx} non-2xx`);
    rows.push([r.label, Math.round(r.rps).toLocaleString('en-US'), fmtMs(r.p50), fmtMs(r.p90), fmtMs(r.p99), fmtMs(r.max), `${r.serverCpuPercent}%`, r.serverRssMb, notes.join(', ')]);
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
  console.log(`\nWarm hello-world throughput (${warm.tool}, ${args.connections} connections, ${args.seconds} s, loopback; latency in ms)`);
  console.log(warmTable(warm));
  console.log(`\nwrote ${writeWarm(warm).join(', ')}`);
}
