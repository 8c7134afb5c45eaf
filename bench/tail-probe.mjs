// Where the warm path's p99 comes from (issue 24, round 8; diagnosis, not a figure to quote).
//
//   node --no-node-snapshot bench/tail-probe.mjs [--worker=hello|hono] [--seconds=5] [--warmup=2]
//        [--pin] [--trace-gc] [--node="--flag ..."] [--args="--processes 1"] [--root=<tree>] [--rounds=1]
//
// Runs `cinder serve` (default settings, access log to a file) under wrk (50 connections) and
// puts side by side: wrk's latency percentiles; the server's own per-request wall time from the
// access log (`wall_ms`: request parsed to response written); the serving thread's GC pauses and
// event-loop stalls over 3 ms (bench/lib/loop-probe.mjs, loaded with --import); with --trace-gc
// the GCs of every isolate in the process. --pin puts the server on CPU 0 and wrk on CPU 1.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, openSync, closeSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';
import { benchDir, freePort, rootDir } from './lib/procs.mjs';
import { runLoad } from './warm.mjs';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const hit = argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : fallback;
};
const has = (name) => argv.includes(`--${name}`);
const worker = opt('worker', 'hello');
const seconds = Number(opt('seconds', 5));
const warmup = Number(opt('warmup', 2));
const rounds = Number(opt('rounds', 1));
const pin = has('pin');
const root = resolve(opt('root', rootDir));
const nodeFlags = (opt('node', '') || '').split(' ').filter(Boolean);
const serveArgs = (opt('args', '') || '').split(' ').filter(Boolean);
const target = worker === 'hono' ? { file: 'hono-example.mjs', path: '/api/users/42?field=name&field=email' } : { file: 'hello.mjs', path: '/' };

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
const f = (n) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitPort(port) {
  for (let i = 0; i < 600; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      await res.arrayBuffer();
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`port ${port} never answered`);
}

function servingPids(pid) {
  const out = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) out.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  return out;
}

function servingPidsOf(pid) {
  try {
    return servingPids(pid);
  } catch {
    return [];
  }
}

/** Time on a CPU and time runnable but waiting for one (ns), from /proc/<pid>/task/<tid>/schedstat. */
function schedOf(pid, all) {
  let run = 0;
  let wait = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const [r, w] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
    if (all || Number(tid) === pid) {
      run += r;
      wait += w;
    }
  }
  return { run, wait };
}

/** Per part of the server's tree: the serving threads, and every other thread of the serving processes. */
function schedTree(root) {
  const out = new Map();
  const add = (name, { run, wait }) => {
    const [r, w] = out.get(name) ?? [0, 0];
    out.set(name, [r + run, w + wait]);
  };
  add('supervisor', schedOf(root, true));
  for (const pid of servingPidsOf(root)) {
    const main = schedOf(pid, false);
    const all = schedOf(pid, true);
    add('serving thread', main);
    add('other threads', { run: all.run - main.run, wait: all.wait - main.wait });
  }
  return out;
}

await buildWorkers();
const dir = mkdtempSync(join(os.tmpdir(), 'cinder-tail-'));
const logFile = join(dir, 'stdout.log');
const [port, adminPort] = [await freePort(), await freePort()];
const token = 'bench-admin-token';
const env = { ...process.env, CINDER_ADMIN_TOKEN: token, LOOP_PROBE_DIR: dir, ...(has('heap') ? { LOOP_PROBE_HEAP: '1' } : has('promoted') ? { LOOP_PROBE_HEAP: 'promoted' } : {}), NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${join(benchDir, 'lib', 'loop-probe.mjs')}`.trim() };
for (const key of Object.keys(env)) if (key.startsWith('CINDER_') && key !== 'CINDER_ADMIN_TOKEN') delete env[key];
const out = openSync(logFile, 'w');
const serverCmd = [process.execPath, '--no-node-snapshot', ...(has('trace-gc') ? ['--trace-gc'] : []), ...nodeFlags, join(root, 'bin', 'cinder.js'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort), '--data', join(dir, 'data'), ...serveArgs];
// --pipe: the access log to a pipe this process reads (as bench/lib/procs.mjs's startCinderServe
// does, and as a supervisor such as journald would), instead of a file
const pipeLog = has('pipe');
const stdio = ['ignore', pipeLog ? 'pipe' : out, 'inherit'];
const child = pin ? spawn('taskset', ['-c', '0', ...serverCmd], { stdio, env }) : spawn(serverCmd[0], serverCmd.slice(1), { stdio, env });
closeSync(out);
if (pipeLog) {
  const { createWriteStream } = await import('node:fs');
  child.stdout.pipe(createWriteStream(logFile));
}
try {
  await waitPort(adminPort);
  const res = await fetch(`http://127.0.0.1:${adminPort}/workers/${worker}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/javascript' }, body: readFileSync(join(buildDir, target.file), 'utf8') });
  if (!res.ok) throw new Error(`deploy: ${res.status} ${await res.text()}`);
  await waitPort(port);
  const url = `http://127.0.0.1:${port}${target.path}`;
  console.log(`# tail probe: ${worker}, ${pin ? 'server on CPU 0, wrk on CPU 1' : 'unpinned'}, node ${nodeFlags.join(' ')} ${serveArgs.join(' ')}; load ${os.loadavg()[0].toFixed(2)}`);
  const windows = [];
  for (let r = 0; r < rounds; r++) {
    // --idle=<s>: the server idle that long before each round (bench:warm and warm-ab leave each
    // server idle while the others are loaded)
    if (Number(opt('idle', 0))) await sleep(Number(opt('idle', 0)) * 1000);
    await runLoad({ url, host: `${worker}.bench`, seconds: warmup, connections: Number(opt('connections', 50)), wrap: pin ? ['taskset', '-c', '1'] : [] });
    const t0 = Date.now();
    const before = schedTree(child.pid);
    let wrkSched = null;
    const peek = setTimeout(() => {
      // wrk's own threads' run-queue wait, read just before it ends (it is a fresh process per run)
      for (const pid of servingPidsOf(process.pid)) if (/wrk/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) wrkSched = schedOf(pid, true);
    }, seconds * 1000 - 200);
    // --full-gc=<round>: one full collection of the serving heap in the middle of that round (needs --node=--expose-gc)
    const fullGc = Number(opt('full-gc', -1)) === r ? setTimeout(() => { for (const pid of servingPidsOf(child.pid)) process.kill(pid, 'SIGURG'); }, (seconds * 1000) / 2) : null;
    const snap = has('snapshot') ? setTimeout(() => { for (const pid of servingPidsOf(child.pid)) process.kill(pid, 'SIGWINCH'); }, (seconds * 1000) / 2) : null;
    const load = await runLoad({ url, host: `${worker}.bench`, seconds, connections: Number(opt('connections', 50)), wrap: pin ? ['taskset', '-c', '1'] : [] });
    clearTimeout(peek);
    const after = schedTree(child.pid);
    const t1 = Date.now();
    windows.push([t0, t1]);
    const ms = (t1 - t0) / 1000;
    const parts = {};
    for (const [name, [run, wait]] of after) {
      const [r0, w0] = before.get(name) ?? [0, 0];
      parts[name] = `${((run - r0) / 1e6 / ms).toFixed(0)} ms/s on CPU, ${((wait - w0) / 1e6 / ms).toFixed(0)} ms/s waiting for one`;
    }
    if (wrkSched) parts.wrk = `${(wrkSched.run / 1e6 / seconds).toFixed(0)} ms/s on CPU, ${(wrkSched.wait / 1e6 / seconds).toFixed(0)} ms/s waiting for one`;
    console.log(`  run queue: ${JSON.stringify(parts)}`);
    console.log(`wrk: ${Math.round(load.rps)} req/s, p50 ${f(load.p50)} p90 ${f(load.p90)} p99 ${f(load.p99)} max ${f(load.max)} ms; load ${os.loadavg()[0].toFixed(2)}`);
  }
  const serving = servingPids(child.pid);
  for (const pid of serving) process.kill(pid, 'SIGUSR2');
  await sleep(500);
  // the access log: wall_ms of the requests inside the measured windows
  const inWindow = (ms) => windows.some(([a, b]) => ms >= a && ms <= b);
  const walls = [];
  const perMs = new Map();
  const isolateGc = new Map();
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (line.startsWith('{') && line.includes('"msg":"request"')) {
      const time = Date.parse(/"time":"([^"]+)"/.exec(line)[1]);
      if (!inWindow(time)) continue;
      const wall = Number(/"wall_ms":([\d.]+)/.exec(line)[1]);
      walls.push(wall);
      perMs.set(time, (perMs.get(time) ?? 0) + 1);
    } else if (line.startsWith('[')) {
      // --trace-gc: "[pid:0xADDR]   1234 ms: Scavenge 5.1 (6.0) -> 4.2 (7.0) MB, pooled: 0 MB, 1.23 / 0.00 ms ..."
      const m = /^\[(\d+):(0x[0-9a-f]+)\]\s+(\d+) ms: (\S+(?: \(\w+\))?)[^,]*, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ ([\d.]+) ms/.exec(line);
      if (!m) continue;
      const key = `${m[1]}:${m[2]}`;
      const s = isolateGc.get(key) ?? { n: 0, ms: 0, max: 0, kinds: {} };
      s.n++;
      s.ms += Number(m[5]);
      s.max = Math.max(s.max, Number(m[5]));
      s.kinds[m[4]] = (s.kinds[m[4]] ?? 0) + 1;
      isolateGc.set(key, s);
    }
  }
  walls.sort((a, b) => a - b);
  console.log(`server wall_ms (${walls.length} requests): p50 ${f(pct(walls, 50))} p90 ${f(pct(walls, 90))} p99 ${f(pct(walls, 99))} p99.9 ${f(pct(walls, 99.9))} max ${f(walls.at(-1))}`);
  const perMsCounts = [...perMs.values()].sort((a, b) => a - b);
  console.log(`requests logged per ms: p50 ${pct(perMsCounts, 50)} p99 ${pct(perMsCounts, 99)} max ${perMsCounts.at(-1)}`);
  for (const file of readdirSync(dir).filter((n) => n.startsWith('probe-'))) {
    const probe = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const abs = (t) => probe.timeOrigin + t;
    const gcs = probe.gcs.filter(([t]) => inWindow(abs(t)));
    const stalls = probe.stalls.filter(([t]) => inWindow(abs(t)));
    const measuredS = windows.reduce((a, [x, y]) => a + (y - x), 0) / 1000;
    const byKind = {};
    for (const [, d, k] of gcs) {
      const s = (byKind[k] ??= { n: 0, ms: 0, max: 0 });
      s.n++;
      s.ms += d;
      s.max = Math.max(s.max, d);
    }
    console.log(`serving thread ${file}: GCs ${Object.entries(byKind).map(([k, s]) => `kind ${k}: ${s.n} (${(s.n / measuredS).toFixed(1)}/s), ${s.ms.toFixed(1)} ms, mean ${(s.ms / s.n).toFixed(2)}, max ${s.max.toFixed(2)}`).join('; ')}`);
    const withGc = stalls.filter(([t, lag]) => gcs.some(([g, d]) => g + d >= t && g <= t + lag));
    const lags = stalls.map(([, l]) => l).sort((a, b) => a - b);
    console.log(`  loop stalls > 3 ms: ${stalls.length} (${(stalls.length / measuredS).toFixed(1)}/s), total ${lags.reduce((a, b) => a + b, 0).toFixed(0)} ms, p50 ${f(pct(lags, 50))} max ${f(lags.at(-1))}; with a GC inside: ${withGc.length} (${withGc.reduce((a, [, l]) => a + l, 0).toFixed(0)} ms)`);
    const hist = {};
    for (const l of lags) hist[l < 5 ? '3-5' : l < 8 ? '5-8' : l < 12 ? '8-12' : '12+'] = (hist['' + (l < 5 ? '3-5' : l < 8 ? '5-8' : l < 12 ? '8-12' : '12+')] ?? 0) + 1;
    console.log(`  stall histogram (ms): ${JSON.stringify(hist)}`);
    for (const [t, lag] of stalls.filter(([, l]) => l >= 8)) {
      const inside = gcs.filter(([g, d]) => g + d >= t && g <= t + lag).map(([g, d, k]) => `k${k} ${d.toFixed(1)}`);
      console.log(`  stall ${lag.toFixed(1)} ms at +${(abs(t) - windows[0][0]).toFixed(0)}: GCs inside [${inside.join(', ')}]`);
    }
  }
  for (const file of readdirSync(dir).filter((n) => n.startsWith('probe-'))) {
    const { heap } = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    if (!heap) continue;
    const total = heap.reduce((a, [, b]) => a + b, 0);
    console.log(`heap allocations sampled (top 60 sites, ${(total / 1e6).toFixed(0)} MB in them; bytes per request over the whole run ~${(total / walls.length).toFixed(0)}):`);
    for (const [site, bytes] of heap.slice(0, Number(opt('top', 40)))) console.log(`  ${(bytes / 1e6).toFixed(1).padStart(7)} MB  ${site}`);
  }
  for (const [key, s] of isolateGc) console.log(`trace-gc ${key}: ${s.n} GCs (whole run), ${s.ms.toFixed(0)} ms, max ${s.max.toFixed(1)} ms; ${JSON.stringify(s.kinds)}`);
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  if (!has('keep')) rmSync(dir, { recursive: true, force: true });
  else console.log(`kept ${dir}`);
}
