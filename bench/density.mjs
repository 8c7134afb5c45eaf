// Density: how much memory a warm worker costs. One Cinder process deploys 100, then 1,000, 2,000,
// 3,000 and 4,000 distinct hello workers (each with its own source, as tenants' are) and sends each one
// request so that it has a live isolate; after each step the bench reads the process RSS and its
// memory mappings (/proc/PID/maps; Linux caps them per process at vm.max_map_count and V8 aborts
// the process when it cannot map one more isolate). MB per isolate = (RSS - RSS before any
// worker) / live isolates. workerd is measured the same way
// through its Worker Loader (one new id = one live isolate), to 1,000 by default.
//
//   node --no-node-snapshot bench/density.mjs [--quick] [--steps=100,1000,4000] [--workerd-steps=100,1000] [--node="--max-semi-space-size=4"]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LeanClient } from './lib/client.mjs';
import { buildWorkers } from './lib/build-workers.mjs';
import { benchDir, environment, freePort, startNodeServer, startWorkerd } from './lib/procs.mjs';
import { sleep, table } from './lib/stats.mjs';

const resultsDir = join(benchDir, 'results');

// Each tenant's hello worker: the same shape as bench/workers/hello.js, with its name inside so
// that no two sources are identical.
const TENANT_HELLO = `export default {
  fetch(request) {
    return new Response('Hello World from __NAME__!\\n', { headers: { 'content-type': 'text/plain;charset=UTF-8' } });
  },
};
`;

export function parseArgs(argv) {
  const args = { quick: false, steps: [100, 1000, 2000, 3000, 4000], workerdSteps: [100, 1000] };
  for (const arg of argv) {
    const [key, value] = arg.replace(/^--/, '').split('=');
    if (key === 'quick') args.quick = true;
    else if (key === 'steps') args.steps = value.split(',').map(Number);
    else if (key === 'workerd-steps') args.workerdSteps = value ? value.split(',').map(Number) : [];
    // --node="--max-semi-space-size=4": Node flags for Cinder's server process (what `cinder serve` gives its serving processes)
    else if (key === 'node') args.node = arg.slice('--node='.length).split(' ').filter(Boolean);
  }
  if (args.quick) {
    if (!argv.some((a) => a.startsWith('--steps='))) args.steps = [100, 500];
    if (!argv.some((a) => a.startsWith('--workerd-steps='))) args.workerdSteps = [100];
  }
  return args;
}

async function settle(server) {
  await sleep(500);
  return server.call({ op: 'stats' });
}

/** Memory mappings of a process: V8 makes ~17 per isolate, and Linux caps them per process. */
function mapsOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').length - 1;
  } catch {
    return null;
  }
}

export function maxMapCount() {
  try {
    return Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8'));
  } catch {
    return null;
  }
}

async function cinderDensity(steps, log, execArgv = []) {
  // Nothing may be reclaimed while the bench fills the process: no idle TTL, no LRU cap in reach.
  const server = await startNodeServer('cinder.mjs', { runtime: { idleTtlMs: 24 * 3600_000, maxLiveWorkers: 1_000_000 } }, { timeoutMs: 120_000, execArgv });
  const rows = [];
  let crashed = null;
  try {
    const base = await settle(server);
    rows.push({ workers: 0, live: 0, rssMb: base.rssMb, maps: mapsOf(server.pid), poolReady: base.pool.ready, seconds: 0 });
    let deployed = 0;
    for (const step of steps) {
      const started = Date.now();
      let res;
      try {
        res = await server.call({ op: 'warmMany', from: deployed, to: step, code: TENANT_HELLO });
      } catch (error) {
        // V8 aborts the whole process when it cannot reserve memory for one more isolate (the
        // per-process limit on memory mappings, vm.max_map_count, comes first): record it.
        crashed = { atStep: step, afterWorkers: deployed, error: String(error.message) };
        log(`[density] cinder: the server process died while going from ${deployed} to ${step} workers: ${error.message} (see its stderr above)`);
        break;
      }
      if (res.failures) log(`[density] ${res.failures} of the workers ${deployed}..${step} did not answer 200 (first: ${res.firstFailure})`);
      deployed = step;
      const s = await settle(server);
      const maps = mapsOf(server.pid);
      const perIsolate = (s.rssMb - base.rssMb) / s.liveIsolates;
      rows.push({ workers: step, live: s.liveIsolates, rssMb: s.rssMb, mbPerIsolate: perIsolate, maps, mapsPerIsolate: maps && rows[0].maps ? (maps - rows[0].maps) / s.liveIsolates : null, poolReady: s.pool.ready, failures: res.failures, seconds: (Date.now() - started) / 1000 });
      log(`[density] cinder  ${String(step).padStart(5)} workers: ${s.liveIsolates} live, RSS ${s.rssMb.toFixed(0)} MB, ${perIsolate.toFixed(2)} MB/isolate, ${maps} memory mappings (pool holds ${s.pool.ready}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  } finally {
    await server.stop();
  }
  return { rows, crashed };
}

async function workerdDensity(steps, log) {
  if (!steps.length) return [];
  const ports = { loader: await freePort(), hello: await freePort() };
  const server = await startWorkerd(ports);
  const client = new LeanClient({ port: ports.loader });
  const rows = [];
  try {
    await sleep(500);
    const base = server.rssMb();
    rows.push({ workers: 0, live: 0, rssMb: base });
    let loaded = 0;
    for (const step of steps) {
      const started = Date.now();
      let failures = 0;
      for (let i = loaded; i < step; i++) {
        const r = await client.get(`/cold/hello/density${i}/`, 'bench');
        if (r.status !== 200) failures++;
      }
      loaded = step;
      await sleep(500);
      const rss = server.rssMb();
      rows.push({ workers: step, live: step, rssMb: rss, mbPerIsolate: (rss - base) / step, failures, seconds: (Date.now() - started) / 1000 });
      log(`[density] workerd ${String(step).padStart(5)} loader isolates: RSS ${rss.toFixed(0)} MB, ${((rss - base) / step).toFixed(2)} MB/isolate in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  } finally {
    client.close();
    await server.stop();
  }
  return rows;
}

export async function runDensity(args, log = (s) => process.stderr.write(s + '\n')) {
  await buildWorkers();
  const { rows: cinder, crashed } = await cinderDensity(args.steps, log, args.node);
  let workerd = [];
  try {
    workerd = await workerdDensity(args.workerdSteps, log);
  } catch (error) {
    log(`[density] workerd: failed: ${error.message}`);
  }
  return { kind: 'density', env: await environment(), maxMapCount: maxMapCount(), args, cinder, cinderCrashed: crashed, workerd };
}

export function densityTable(density) {
  const rows = [['runtime', 'workers', 'live isolates', 'RSS MB', 'MB per isolate', 'mappings/isolate', '4,000 in 4 GB?']];
  for (const [name, list] of [['Cinder', density.cinder], ['workerd (Worker Loader)', density.workerd]]) {
    for (const r of list) {
      const projected = r.mbPerIsolate ? (list[0].rssMb + 4000 * r.mbPerIsolate) / 1024 : null;
      rows.push([
        name,
        r.workers.toLocaleString('en-US'),
        r.live,
        r.rssMb.toFixed(0),
        r.mbPerIsolate ? r.mbPerIsolate.toFixed(2) : '-',
        r.mapsPerIsolate ? r.mapsPerIsolate.toFixed(1) : '-',
        projected ? `${projected.toFixed(2)} GB ${projected <= 4 ? 'yes' : 'NO'}` : '-',
      ]);
    }
    if (name === 'Cinder' && density.cinderCrashed) {
      const c = density.cinderCrashed;
      rows.push([name, c.atStep.toLocaleString('en-US'), '-', '-', '-', '-', `process died after ${c.afterWorkers}`]);
    }
  }
  let out = table(rows);
  const perIsolate = density.cinder.at(-1)?.mapsPerIsolate;
  if (density.maxMapCount && perIsolate) {
    out += `\nvm.max_map_count = ${density.maxMapCount}: at ${perIsolate.toFixed(1)} mappings per isolate one process tops out near ${Math.floor(density.maxMapCount / perIsolate).toLocaleString('en-US')} isolates`;
  }
  return out;
}

export function writeDensity(density) {
  mkdirSync(resultsDir, { recursive: true });
  const stamp = density.env.date.replace(/[:.]/g, '-');
  const json = JSON.stringify(density, null, 1);
  writeFileSync(join(resultsDir, `density-${stamp}.json`), json);
  writeFileSync(join(resultsDir, 'latest-density.json'), json);
  return [`bench/results/density-${stamp}.json`, 'bench/results/latest-density.json'];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = parseArgs(process.argv.slice(2));
  const density = await runDensity(args);
  console.log('\nDensity: warm hello workers per process (RSS; "4,000 in 4 GB" projects the measured MB/isolate)');
  console.log(densityTable(density));
  console.log(`\nwrote ${writeDensity(density).join(', ')}`);
}
