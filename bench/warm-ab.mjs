// Interleaved A/B of the warm path through `cinder serve`, read per thread (issue 24).
//
//   node --no-node-snapshot bench/warm-ab.mjs --a=/path/to/tree-A --b=. [--a-args="--processes 1"]
//        [--b-args="--processes 1"] [--a-node="--no-parallel-scavenge"] [--b-node=...] [--worker=hello|hono] [--pairs=6] [--seconds=5] [--warmup=2]
//        [--worker-file=bench/workers/timer-hello.js --worker=timer --path=/]
//        [--probe] [--a-wrk="nice -n -10"] [--b-wrk="taskset -c 1"] (diagnosis: the command wrk runs under)
//
// A and B are two Cinder trees (built: bin/, dist/, scripts/, package.json; node_modules may be a
// symlink) or the same tree with other flags. Both servers run side by side; each pair loads A
// then B (the order alternates every pair) with wrk (50 connections, one thread) after a warm-up.
// Around each measured run every thread of the server's process tree is read from /proc, so the
// CPU per request splits into the supervisor, the serving processes' main threads, isolated-vm's
// threads, V8's platform (GC) workers and the rest (libuv, storage processes). Prints each pair
// and the medians.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';
import { rootDir, startCinderServe } from './lib/procs.mjs';
import { runLoad } from './warm.mjs';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const hit = argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : fallback;
};
const split = (s) => (s ? s.split(' ').filter(Boolean) : []);
const sides = [
  { name: 'A', root: resolve(opt('a', rootDir)), args: split(opt('a-args', '')), node: split(opt('a-node', '')), env: Object.fromEntries(split(opt('a-env', '')).map((kv) => kv.split('='))), wrk: split(opt('a-wrk', '')) },
  { name: 'B', root: resolve(opt('b', rootDir)), args: split(opt('b-args', '')), node: split(opt('b-node', '')), env: Object.fromEntries(split(opt('b-env', '')).map((kv) => kv.split('='))), wrk: split(opt('b-wrk', '')) },
];
const worker = opt('worker', 'hello');
const pairs = Number(opt('pairs', 6));
const seconds = Number(opt('seconds', 5));
const warmup = Number(opt('warmup', 2));
const connections = Number(opt('connections', 50));
// --worker-file=<module> [--path=/]: any other worker (deployed as "<--worker>", default "custom")
const workerFile = opt('worker-file', null);
const target = workerFile ? { file: resolve(workerFile), path: opt('path', '/') } : worker === 'hono' ? { file: 'hono-example.mjs', path: '/api/users/42?field=name&field=email' } : { file: 'hello.mjs', path: '/' };
const TICK_MS = 1000 / 100; // clock ticks at 100 Hz
// --probe: bench/lib/loop-probe.mjs in the serving processes; each run then also reports the
// serving thread's scavenges and mark-compacts a second and its event-loop stalls over 3 ms
const probe = argv.includes('--probe');
const probeDir = probe ? mkdtempSync(join(os.tmpdir(), 'cinder-warm-ab-')) : null;

function children(pid) {
  const out = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean)) out.push(Number(child));
    }
  } catch {
    // gone
  }
  return out;
}

function threads(pid) {
  const out = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
        out.push({ tid: Number(tid), comm, ms: (Number(fields[11]) + Number(fields[12])) * TICK_MS, vcs: 0 });
      } catch {
        // thread ended
      }
    }
  } catch {
    // process ended
  }
  return out;
}

/** CPU ms by part of the tree rooted at the supervisor (or the lone serving process). */
function reading(rootPid, supervised) {
  const parts = { supervisor: 0, main: 0, ivm: 0, v8: 0, libuv: 0, otherThreads: 0, otherProcs: 0 };
  const serving = supervised ? children(rootPid) : [rootPid];
  if (supervised) for (const t of threads(rootPid)) parts.supervisor += t.ms;
  for (const pid of serving) {
    for (const t of threads(pid)) {
      if (t.tid === pid) parts.main += t.ms;
      else if (/V8Worker/.test(t.comm)) parts.v8 += t.ms;
      else if (/^libuv/.test(t.comm)) parts.libuv += t.ms;
      // isolated-vm's threads are unnamed and inherit the name of the thread that made them
      else if (t.comm === 'node-MainThread') parts.ivm += t.ms;
      else parts.otherThreads += t.ms;
    }
    const walk = (p) => {
      for (const c of children(p)) {
        for (const t of threads(c)) parts.otherProcs += t.ms;
        walk(c);
      }
    };
    walk(pid);
  }
  return parts;
}

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

/** A serving process's resident memory (MB) after the run, from /proc. */
function servingRssMb(pid) {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  } catch {
    return 0;
  }
}

/** The serving threads' GCs and loop stalls inside [t0, t1], per second (bench/lib/loop-probe.mjs). */
async function probeReading(side, t0, t1) {
  const pids = side.supervised ? children(side.server.pid) : [side.server.pid];
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  await new Promise((r) => setTimeout(r, 300));
  const s = (t1 - t0) / 1000;
  const out = { scavenges: 0, majors: 0, gcMs: 0, stalls: 0, stallMs: 0, bigStalls: 0 };
  for (const pid of pids) {
    const p = JSON.parse(readFileSync(join(probeDir, `probe-${pid}.json`), 'utf8'));
    const inside = ([t]) => p.timeOrigin + t >= t0 && p.timeOrigin + t <= t1;
    for (const [, d, kind] of p.gcs.filter(inside)) {
      if (kind === 1) out.scavenges += 1 / s;
      if (kind === 4) out.majors += 1 / s;
      out.gcMs += d / s;
    }
    for (const [, lag] of p.stalls.filter(inside)) {
      out.stalls += 1 / s;
      out.stallMs += lag / s;
      if (lag >= 8) out.bigStalls += 1 / s;
    }
  }
  return out;
}

await buildWorkers();
for (const side of sides) {
  const env = probe ? { ...side.env, LOOP_PROBE_DIR: probeDir, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${join(rootDir, 'bench', 'lib', 'loop-probe.mjs')}`.trim() } : side.env;
  side.server = await startCinderServe({ [worker]: workerFile ? target.file : join(buildDir, target.file) }, { root: side.root, args: side.args, env, execArgv: side.node });
  side.supervised = !side.args.includes('--no-supervisor');
  side.runs = [];
  if (argv.includes('--threads')) {
    for (const pid of side.supervised ? children(side.server.pid) : [side.server.pid]) console.log(side.name, pid, threads(pid).map((t) => t.comm).join(','));
  }
}
console.log(`# warm A/B, ${worker}, ${pairs} pairs of ${seconds} s (warm-up ${warmup} s), ${connections} connections; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (const side of sides) console.log(`# ${side.name}: ${side.wrk.length ? `(wrk under ${side.wrk.join(' ')}) ` : ''}${side.node.length ? `node ${side.node.join(' ')} ` : ''}${side.root} ${side.args.join(' ')} ${Object.entries(side.env).map(([k, v]) => `${k}=${v}`).join(' ')}`);
const us = (ms, n) => (ms * 1000) / n;
try {
  for (let pair = 0; pair < pairs; pair++) {
    const order = pair % 2 ? [sides[1], sides[0]] : sides;
    for (const side of order) {
      const url = `http://127.0.0.1:${side.server.port}${target.path}`;
      const host = `${worker}.bench`;
      // --full-gc (with --probe and --a-node/--b-node=--expose-gc): one full collection of each
      // serving heap in the middle of every warm-up, so each measured run comes after one (the
      // state a heap is in after its first mark-compact under load)
      const fullGc = argv.includes('--full-gc') ? setTimeout(() => { for (const pid of side.supervised ? children(side.server.pid) : [side.server.pid]) process.kill(pid, 'SIGURG'); }, warmup * 500) : null;
      await runLoad({ url, host, seconds: warmup, connections, wrap: side.wrk });
      clearTimeout(fullGc);
      const before = reading(side.server.pid, side.supervised);
      const t0 = Date.now();
      const load = await runLoad({ url, host, seconds, connections, wrap: side.wrk });
      const t1 = Date.now();
      const after = reading(side.server.pid, side.supervised);
      const gc = probe ? await probeReading(side, t0, t1) : null;
      const n = load.requests;
      const per = Object.fromEntries(Object.keys(before).map((k) => [k, us(after[k] - before[k], n)]));
      const total = Object.values(per).reduce((a, b) => a + b, 0);
      const rssMb = (side.supervised ? children(side.server.pid) : [side.server.pid]).reduce((a, pid) => a + servingRssMb(pid), 0);
      const run = { ...per, total, rps: load.rps, p99: load.p99, perCpuS: 1e6 / total, non2xx: load.non2xx, errors: load.errors, load1: os.loadavg()[0], rssMb, ...(gc ?? {}) };
      side.runs.push(run);
      console.log(`pair ${pair + 1} ${side.name}: ${Math.round(load.rps)} req/s p99 ${load.p99} ms | us/req total ${total.toFixed(1)} (main ${per.main.toFixed(1)}, ivm ${per.ivm.toFixed(1)}, v8 ${per.v8.toFixed(1)}, libuv ${per.libuv.toFixed(1)}, other ${(per.otherThreads + per.otherProcs).toFixed(1)}, supervisor ${per.supervisor.toFixed(1)}) = ${Math.round(run.perCpuS)} req/CPU-s, serving RSS ${Math.round(rssMb)} MB${run.non2xx || run.errors ? ` non2xx ${run.non2xx} errors ${run.errors}` : ''} load ${run.load1.toFixed(2)}${gc ? ` | serving thread: ${gc.scavenges.toFixed(0)} scavenges/s, ${gc.majors.toFixed(1)} mark-compacts/s, GC ${gc.gcMs.toFixed(0)} ms/s, stalls > 3 ms ${gc.stalls.toFixed(1)}/s (${gc.stallMs.toFixed(0)} ms/s), > 8 ms ${gc.bigStalls.toFixed(1)}/s` : ''}`);
    }
  }
} finally {
  for (const side of sides) await side.server.stop();
}
if (probeDir) rmSync(probeDir, { recursive: true, force: true });
for (const side of sides) {
  const m = (k) => median(side.runs.map((r) => r[k]));
  if (probe) console.log(`median ${side.name} serving thread: ${m('scavenges').toFixed(0)} scavenges/s, ${m('majors').toFixed(2)} mark-compacts/s, GC ${m('gcMs').toFixed(0)} ms/s, stalls > 3 ms ${m('stalls').toFixed(1)}/s (${m('stallMs').toFixed(0)} ms/s), > 8 ms ${m('bigStalls').toFixed(1)}/s`);
  console.log(`median ${side.name}: ${Math.round(m('rps'))} req/s, p99 ${m('p99')} ms, us/req total ${m('total').toFixed(1)} (main ${m('main').toFixed(1)}, ivm ${m('ivm').toFixed(1)}, v8 ${m('v8').toFixed(1)}, supervisor ${m('supervisor').toFixed(1)}), ${Math.round(m('perCpuS'))} req/CPU-s, serving processes' RSS ${Math.round(m('rssMb'))} MB, non-2xx ${side.runs.reduce((a, r) => a + r.non2xx, 0)}`);
}
