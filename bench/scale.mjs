// Scale: `node --no-node-snapshot bench/scale.mjs` (add --quick for a smoke run).
//
// 1. Throughput of `cinder serve` with 1 and 2 serving processes (--processes), and with 2 sharing
//    the port through SO_REUSEPORT instead of node:cluster's round-robin
//    (CINDER_DATA_PLANE_LISTEN=reuseport, a measurement switch): the hello worker, wrk (or
//    autocannon) in its own process, interleaved rounds, medians, and requests per CPU-second of
//    the server's process tree.
// 2. Failures when a serving process goes away under load, in both modes: kill -9 of one of the
//    two, then a rolling restart (SIGHUP), each under 16 clients over keep-alive connections and
//    then with a new connection per request; counts, not timings.
// 3. Deploy propagation across 3 nodes on one Redis (each node --processes 1): for each of
//    --deploys uploads to node A, how long from A's answer until B and C serve the new version
//    (each polled back to back over a keep-alive connection), and from the upload's start; and the
//    nodes' own figure from their logs. --redis-cluster: the same on a three-master Redis Cluster
//    (redis-server --cluster-enabled + redis-cli --cluster create) instead of one Redis.
//
// Output: tables on stdout, bench/results/scale-<timestamp>.json and latest-scale.json.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';
import { benchDir, environment, freePort, startCinderServe, treeCpuMs } from './lib/procs.mjs';
import { runLoad, parseArgs } from './warm.mjs';
import { fmtMs, table, sleep } from './lib/stats.mjs';

const args = { ...parseArgs(process.argv.slice(2)), deploys: 20, parts: ['throughput', 'disruption', 'propagation'] };
for (const arg of process.argv.slice(2)) {
  if (arg.startsWith('--deploys=')) args.deploys = Number(arg.split('=')[1]);
  if (arg.startsWith('--parts=')) args.parts = arg.split('=')[1].split(',');
  if (arg === '--redis-cluster') args.redisCluster = true;
}
const log = (s) => process.stderr.write(s + '\n');
const median = (xs) => {
  const sorted = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN;
};
const pct = (xs, p) => {
  const sorted = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] : NaN;
};

async function metricsText(server) {
  const res = await fetch(`http://127.0.0.1:${server.adminPort}/metrics`, { headers: { authorization: `Bearer ${server.token}` } });
  return res.text();
}

async function servingProcesses(server) {
  const m = /cinder_serving_processes\{[^}]*\} (\d+)/.exec(await metricsText(server).catch(() => ''));
  return m ? Number(m[1]) : 0;
}

// --- 1. throughput ------------------------------------------------------------------------------------

async function throughput() {
  await buildWorkers();
  const hello = { hello: join(buildDir, 'hello.mjs') };
  const configs = [
    { id: 'p1', label: '--processes 1', args: ['--processes', '1'], env: {} },
    { id: 'p2', label: '--processes 2 (cluster round-robin)', args: ['--processes', '2'], env: {} },
    { id: 'p2-shared', label: '--processes 2 (shared accept queue)', args: ['--processes', '2'], env: { CINDER_CLUSTER_SCHEDULING: 'shared' } },
    { id: 'p2-reuseport', label: '--processes 2 (SO_REUSEPORT)', args: ['--processes', '2'], env: { CINDER_DATA_PLANE_LISTEN: 'reuseport' } },
  ];
  const servers = {};
  for (const config of configs) {
    log(`[scale] starting cinder serve ${config.label}`);
    servers[config.id] = await startCinderServe(hello, { args: config.args, env: config.env });
    const want = Number(config.args[1]);
    const deadline = Date.now() + 60_000;
    while ((await servingProcesses(servers[config.id])) < want && Date.now() < deadline) await sleep(200);
  }
  const results = Object.fromEntries(configs.map((c) => [c.id, []]));
  try {
    for (let round = 0; round < args.rounds; round++) {
      for (const config of configs) {
        const server = servers[config.id];
        const url = `http://127.0.0.1:${server.port}/`;
        await runLoad({ url, host: 'hello.bench', seconds: args.warmup, connections: args.connections });
        const cpuBefore = treeCpuMs(server.pid);
        const run = await runLoad({ url, host: 'hello.bench', seconds: args.seconds, connections: args.connections });
        const cpuMs = treeCpuMs(server.pid) - cpuBefore;
        run.reqPerCpuS = run.requests / (cpuMs / 1000);
        results[config.id].push(run);
        log(`[scale] round ${round + 1} ${config.label}: ${Math.round(run.rps)} req/s, p99 ${fmtMs(run.p99)} ms, errors ${run.errors + run.non2xx}`);
      }
    }
  } finally {
    for (const server of Object.values(servers)) await server.stop();
  }
  return configs.map((config) => {
    const runs = results[config.id];
    return {
      id: config.id,
      label: config.label,
      rps: median(runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      reqPerCpuS: median(runs.map((r) => r.reqPerCpuS)),
      errors: runs.reduce((sum, r) => sum + r.errors + r.non2xx, 0),
      tool: runs[0]?.tool,
    };
  });
}

// --- 2. failures when a process goes away ------------------------------------------------------------

/** `connections` clients back to back; `fresh`: a new connection for every request (what lands
 *  in the listening socket's accept queue, where the two modes differ). */
function steadyLoad(port, connections, fresh = false) {
  const agent = new Agent({ connections, pipelining: fresh ? 0 : 1 });
  const state = { ok: 0, failed: 0, running: true, errors: {} };
  const loops = Array.from({ length: connections }, async () => {
    while (state.running) {
      try {
        const res = await request(`http://127.0.0.1:${port}/`, { headers: { host: 'hello.bench' }, dispatcher: agent, reset: fresh, headersTimeout: 10_000, bodyTimeout: 10_000 });
        await res.body.text();
        if (res.statusCode === 200) state.ok++;
        else state.failed++;
      } catch (error) {
        state.failed++;
        const code = error?.code ?? error?.name ?? 'error';
        state.errors[code] = (state.errors[code] ?? 0) + 1;
      }
    }
  });
  return {
    state,
    async stop() {
      state.running = false;
      await Promise.all(loops);
      await agent.close();
    },
  };
}

const childPids = (server) => [...server.stderr().matchAll(/serving process pid (\d+)/g)].map((m) => Number(m[1]));

async function disruption() {
  const hello = { hello: join(buildDir, 'hello.mjs') };
  const modes = [
    { id: 'cluster', label: 'cluster round-robin', env: {} },
    { id: 'shared', label: 'shared accept queue', env: { CINDER_CLUSTER_SCHEDULING: 'shared' } },
    { id: 'reuseport', label: 'SO_REUSEPORT', env: { CINDER_DATA_PLANE_LISTEN: 'reuseport' } },
  ];
  const out = [];
  for (const mode of modes) {
    const server = await startCinderServe(hello, { args: ['--processes', '2'], env: mode.env });
    try {
      const deadline = Date.now() + 60_000;
      while ((await servingProcesses(server)) < 2 && Date.now() < deadline) await sleep(200);
      const result = { id: mode.id, label: mode.label };
      for (const fresh of [false, true]) {
        // kill -9 of one process
        let load = steadyLoad(server.port, 16, fresh);
        await sleep(1500);
        const before = childPids(server);
        process.kill(before.at(-1), 'SIGKILL');
        while (childPids(server).length === before.length) await sleep(50);
        while ((await servingProcesses(server)) < 2) await sleep(100);
        await sleep(1500);
        await load.stop();
        const killed = { ...load.state };
        log(`[scale]   kill -9 errors: ${JSON.stringify(killed.errors)}`);
        // rolling restart
        load = steadyLoad(server.port, 16, fresh);
        await sleep(1500);
        const restarted = childPids(server).length;
        process.kill(server.pid, 'SIGHUP');
        while (childPids(server).length < restarted + 2) await sleep(100);
        while ((await servingProcesses(server)) < 2) await sleep(100);
        await sleep(1500);
        await load.stop();
        const rolled = { ...load.state };
        log(`[scale]   rolling restart errors: ${JSON.stringify(rolled.errors)}`);
        result[fresh ? 'fresh' : 'keepAlive'] = { kill9: { ok: killed.ok, failed: killed.failed, errors: killed.errors }, rolling: { ok: rolled.ok, failed: rolled.failed, errors: rolled.errors } };
        log(`[scale] ${mode.label}, ${fresh ? 'a connection per request' : 'keep-alive'}: kill -9 ${killed.failed} failed of ${killed.ok + killed.failed}; rolling restart ${rolled.failed} failed of ${rolled.ok + rolled.failed}`);
      }
      out.push(result);
    } finally {
      await server.stop();
    }
  }
  return out;
}

// --- 3. deploy propagation ----------------------------------------------------------------------------

function startRedis() {
  return new Promise(async (resolve, reject) => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'cinder-bench-redis-'));
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (/Ready to accept connections/.test(out)) resolve({ url: `redis://127.0.0.1:${port}`, stop: () => { child.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); } });
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)));
  });
}

/** Three cluster-enabled redis-servers made one cluster with redis-cli (no replicas). */
async function startRedisCluster() {
  const { spawnSync } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'cinder-bench-redis-cluster-'));
  const children = [];
  const ports = [];
  const stop = () => {
    for (const child of children) child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    ports.push(port);
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (/Ready to accept connections/.test(out)) resolve();
      });
      child.on('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)));
    });
  }
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
  if (created.status !== 0) {
    stop();
    throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  }
  for (let i = 0; i < 200; i++) {
    if (ports.every((p) => /cluster_state:ok/.test(spawnSync('redis-cli', ['-p', String(p), 'cluster', 'info'], { encoding: 'utf8' }).stdout))) break;
    await sleep(100);
  }
  return { url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, stop };
}

async function propagation() {
  const redis = args.redisCluster ? await startRedisCluster() : await startRedis();
  const nodes = [];
  try {
    for (const id of ['a', 'b', 'c']) {
      log(`[scale] starting node ${id} on Redis`);
      nodes.push(await startCinderServe({}, { args: ['--processes', '1', '--redis', redis.url, '--node-id', `bench-${id}`], keepLogLines: /deploy propagated/ }));
    }
    const [a, ...others] = nodes;
    const agents = others.map(() => new Agent({ connections: 1 }));
    const code = (n) => `export default { fetch() { return new Response("v${n}"); } };`;
    const afterAnswer = [];
    const afterStart = [];
    const pollsPerDeploy = [];
    for (let n = 1; n <= args.deploys; n++) {
      const started = performance.now();
      const res = await fetch(`http://127.0.0.1:${a.adminPort}/workers/prop`, { method: 'PUT', headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/javascript' }, body: code(n) });
      if (!res.ok) throw new Error(`deploy ${n}: ${res.status} ${await res.text()}`);
      await res.text();
      const answered = performance.now();
      await Promise.all(
        others.map(async (node, i) => {
          let polls = 0;
          for (;;) {
            polls++;
            const r = await request(`http://127.0.0.1:${node.port}/`, { headers: { host: 'prop.bench' }, dispatcher: agents[i] });
            const text = await r.body.text();
            if (text === `v${n}`) break;
            if (performance.now() - answered > 10_000) throw new Error(`node ${i + 1} never served v${n} (last: ${r.statusCode} ${text})`);
          }
          const seen = performance.now();
          afterAnswer.push(seen - answered);
          afterStart.push(seen - started);
          pollsPerDeploy.push(polls);
        }),
      );
      await sleep(100);
    }
    for (const agent of agents) await agent.close();
    await sleep(500);
    // The nodes' own figure (scale.ts): ms from A's announcement (the store has the write) until
    // the node serves the version, as each of B and C logged it.
    const nodeFigures = others.flatMap((node) => node.keptLogLines().map((line) => JSON.parse(line)).filter((entry) => entry.worker === 'prop').map((entry) => entry.servingMs));
    return {
      nodeMeasuredMs: { count: nodeFigures.length, p50: pct(nodeFigures, 50), p90: pct(nodeFigures, 90), max: Math.max(...nodeFigures), over100: nodeFigures.filter((ms) => ms > 100).length },
      deploys: args.deploys,
      nodes: 3,
      afterAnswerMs: { p50: pct(afterAnswer, 50), p90: pct(afterAnswer, 90), max: Math.max(...afterAnswer) },
      afterUploadStartMs: { p50: pct(afterStart, 50), p90: pct(afterStart, 90), max: Math.max(...afterStart) },
      firstPollServedNew: pollsPerDeploy.filter((p) => p === 1).length / pollsPerDeploy.length,
    };
  } finally {
    for (const node of nodes) await node.stop();
    redis.stop();
  }
}

const env = await environment();
if (args.quick) args.rounds = 1;
const scale = {
  env,
  args,
  throughput: args.parts.includes('throughput') ? await throughput() : [],
  disruption: args.parts.includes('disruption') ? await disruption() : [],
  propagation: args.parts.includes('propagation') ? await propagation() : null,
};
if (scale.throughput.length) console.log(`\nThroughput, hello worker (${scale.throughput[0]?.tool}, ${args.connections} connections, medians of ${args.rounds} interleaved rounds of ${args.seconds} s; latency ms)`);
if (scale.throughput.length) console.log(
  table([
    ['server', 'req/s', 'p50', 'p99', 'req per CPU-s', 'errors'],
    ...scale.throughput.map((r) => [r.label, String(Math.round(r.rps)), fmtMs(r.p50), fmtMs(r.p99), String(Math.round(r.reqPerCpuS)), String(r.errors)]),
  ]),
);
const cell = (r) => `${r.failed} / ${r.ok + r.failed}`;
if (scale.disruption.length) console.log('\nFailed requests when a serving process goes away (2 processes, 16 clients back to back)');
if (scale.disruption.length) console.log(
  table([
    ['mode', 'clients', 'kill -9 of one: failed / sent', 'rolling restart: failed / sent'],
    ...scale.disruption.flatMap((d) => [
      [d.label, 'keep-alive', cell(d.keepAlive.kill9), cell(d.keepAlive.rolling)],
      [d.label, 'connection per request', cell(d.fresh.kill9), cell(d.fresh.rolling)],
    ]),
  ]),
);
const p = scale.propagation;
if (p) console.log(`\nDeploy propagation, 3 nodes on ${args.redisCluster ? 'a three-master Redis Cluster' : 'one Redis'}, ${p.deploys} deploys to node A (ms until B and C serve the new version)`);
if (p) console.log(
  table([
    ['measured from', 'p50', 'p90', 'max'],
    ["A's answer", fmtMs(p.afterAnswerMs.p50), fmtMs(p.afterAnswerMs.p90), fmtMs(p.afterAnswerMs.max)],
    ['the upload start', fmtMs(p.afterUploadStartMs.p50), fmtMs(p.afterUploadStartMs.p90), fmtMs(p.afterUploadStartMs.max)],
    ["A's announcement (the nodes' own log)", fmtMs(p.nodeMeasuredMs.p50), fmtMs(p.nodeMeasuredMs.p90), fmtMs(p.nodeMeasuredMs.max)],
  ]),
);
if (p) console.log(`node-measured: ${p.nodeMeasuredMs.over100} of ${p.nodeMeasuredMs.count} propagations over 100 ms`);
if (p) console.log(`first request after A answered already served the new version: ${Math.round(p.firstPollServedNew * 100)}% of the time`);
mkdirSync(join(benchDir, 'results'), { recursive: true });
const stamp = env.date.replace(/[:.]/g, '-');
writeFileSync(join(benchDir, 'results', `scale-${stamp}.json`), JSON.stringify(scale, null, 1));
writeFileSync(join(benchDir, 'results', 'latest-scale.json'), JSON.stringify(scale, null, 1));
console.log(`\nwrote bench/results/scale-${stamp}.json`);
