// Where Cinder's time goes: runs the Cinder bench server under `node --cpu-prof`, drives it
// (warm: wrk or autocannon for a few seconds; cold: sequential cold starts with the lean client),
// then prints the hottest functions by self time and the inclusive time of the hot-path stages.
//
//   node bench/profile.mjs warm [--seconds=5] [--no-snapshot]
//   node bench/profile.mjs cold [--n=300] [--worker=hello|hono] [--no-snapshot]
//   node bench/profile.mjs serve [--seconds=5] [--worker=hello|hono]
//   node bench/profile.mjs attack [--attack=fan-out] [--n=60]
//
// `serve` profiles the real `cinder serve` process as bench/warm.mjs runs it (CLI, default
// logging to a pipe, workers deployed through the admin API), under wrk at 50 connections.
//
// The .cpuprofile is kept in bench/results/profiles/ (open it in Chrome DevTools > Performance).
// Note: time spent inside isolates runs on isolated-vm's threads and does not show in the main
// thread's profile except as the synchronous calls that wait for it (applySync, compile*Sync...).
// isolated-vm's methods are native, so their main-thread cost (an async apply's scheduling and
// copying, new Isolate, createContextSync) shows as self time of the JS function calling them:
// WorkerInstance.fetch's self time is mostly dispatchFetch.apply, ReadyIsolate's is isolate creation.
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LeanClient } from './lib/client.mjs';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';
import { benchDir, startCinderServe, startNodeServer } from './lib/procs.mjs';
import { runLoad } from './warm.mjs';
import { table } from './lib/stats.mjs';
import { ATTACKS, deployAttack, workerName } from './lib/attack-workers.mjs';

const argv = process.argv.slice(2);
const mode = argv.find((a) => !a.startsWith('--')) ?? 'warm';
const opt = (name, fallback) => {
  const hit = argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.split('=')[1] : fallback;
};
const snapshot = !argv.includes('--no-snapshot');
const worker = opt('worker', 'hello');
const profileDir = join(benchDir, 'results', 'profiles');
mkdirSync(profileDir, { recursive: true });

await buildWorkers();
const before = new Set(readdirSync(profileDir));
const profArgs = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-interval=100'];
const server =
  mode === 'serve' || mode === 'attack'
    ? await startCinderServe({ hello: join(buildDir, 'hello.mjs'), hono: join(buildDir, 'hono-example.mjs') }, { execArgv: profArgs })
    : await startNodeServer('cinder.mjs', { snapshot, workers: { hello: join(buildDir, 'hello.mjs'), hono: join(buildDir, 'hono-app.mjs') } }, { execArgv: profArgs });
// serve mode: the warm bench's Hono row (a JSON route with a path parameter)
const path = worker === 'hono' ? (mode === 'serve' ? '/api/users/42?field=name&field=email' : '/api/highlight?lang=javascript') : '/';
if (mode === 'attack') {
  // one of bench/attacks.mjs's attack workers, requested --n times from 3 connections
  const attack = opt('attack', 'fan-out');
  await deployAttack(server, workerName(attack), ATTACKS[attack]);
  let left = Number(opt('n', 60));
  await Promise.all([0, 1, 2].map(async () => {
    const client = new LeanClient({ port: server.port });
    while (left-- > 0) await client.get('/', `${workerName(attack)}.bench`, { timeoutMs: 60_000 });
    client.close();
  }));
} else if (mode === 'cold') {
  const client = new LeanClient({ port: server.port });
  const n = Number(opt('n', 300));
  for (let i = 0; i < n; i++) {
    await client.get(path, `${worker}.bench`);
    await server.call({ op: 'evict', name: worker });
  }
  client.close();
} else {
  const result = await runLoad({ url: `http://127.0.0.1:${server.port}${path}`, host: `${worker}.bench`, seconds: Number(opt('seconds', 5)), connections: 50 });
  process.stderr.write(`[profile] load: ${Math.round(result.rps)} req/s, p99 ${result.p99} ms (${result.tool})\n`);
}
await server.stop();

const file = readdirSync(profileDir)
  .filter((f) => f.endsWith('.cpuprofile') && !before.has(f))
  .map((f) => join(profileDir, f))
  // `cinder serve` writes two (the supervisor's and its serving child's): the busiest is the largest.
  .sort((a, b) => statSync(b).size - statSync(a).size)[0];
if (!file) throw new Error('no profile written');
console.log(`profile: ${file}`);
summarize(JSON.parse(readFileSync(file, 'utf8')));

function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  const deltas = profile.timeDeltas;
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (deltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const key = (n) => {
    const f = n.callFrame;
    const file = f.url ? f.url.replace(/^.*\/(node_modules\/|dist\/|bench\/)/, '$1') : '';
    return `${f.functionName || '(anonymous)'} ${file}${file ? ':' + (f.lineNumber + 1) : ''}`;
  };
  const self = new Map();
  for (const [id, us] of selfUs) {
    const k = key(byId.get(id));
    self.set(k, (self.get(k) ?? 0) + us);
  }
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30);
  console.log(`\nself time, top 30 of ${(total / 1000).toFixed(0)} ms sampled`);
  console.log(table([['function', 'ms', '%'], ...top.map(([k, us]) => [k.slice(0, 110), (us / 1000).toFixed(1), ((100 * us) / total).toFixed(1)])]));

  // Inclusive time of a few stages: a sample counts for a stage if any frame on its stack matches.
  const stages = {
    'ingress request handler (ingress.js)': (n) => /(server|data-plane)\/ingress\.js/.test(n.callFrame.url),
    'node http parse/write (node:_http_*)': (n) => /node:_http_|node:net|node:stream/.test(n.callFrame.url),
    'runtime.fetch / WorkerInstance.fetch': (n) => /runtime\/(runtime|worker-instance)\.js/.test(n.callFrame.url),
    'cold: ReadyIsolate (pool refill / no pool)': (n) => n.callFrame.functionName === 'ReadyIsolate',
    'cold: WorkerInstance.load (compile + top level)': (n) => n.callFrame.functionName === 'load' && /worker-instance/.test(n.callFrame.url),
    'isolate dispose': (n) => n.callFrame.functionName === 'dispose',
    'pino logging': (n) => /node_modules\/pino/.test(n.callFrame.url),
    'garbage collector': (n) => n.callFrame.functionName === '(garbage collector)',
    'idle': (n) => n.callFrame.functionName === '(idle)',
  };
  const stageUs = Object.fromEntries(Object.keys(stages).map((k) => [k, 0]));
  for (const [id, us] of selfUs) {
    const hit = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur);
      for (const [name, match] of Object.entries(stages)) if (!hit.has(name) && match(node)) hit.add(name);
    }
    for (const name of hit) stageUs[name] += us;
  }
  console.log('\ninclusive time by stage (main thread)');
  console.log(table([['stage', 'ms', '%'], ...Object.entries(stageUs).map(([k, us]) => [k, (us / 1000).toFixed(1), ((100 * us) / total).toFixed(1)])]));
}
