// The hostile-tenant figures (issue 22): `npm run bench:attacks` (add --quick for a smoke run).
//
// `cinder serve` on its defaults, in its own process (bench/lib/procs.mjs), serves a neighbour
// hello worker and one worker per attack from test/security/. The neighbour is requested without
// pause from --clients raw keep-alive connections (bench/lib/client.mjs), first calm, then while
// each attack runs from its own --attackers connections in a loop (the attacker's answers are
// 503s and 500s; they are counted, not judged). Per phase: the neighbour's requests, failures
// (anything but a 200 with its body, or no answer within 10 s), p50/p99 and p99 against calm.
// Targets (DESIGN, "Under attack"): zero failures, p99 under attack < 2x calm.
//
// `--floor` adds control phases with no attack in Cinder at all: 1 or 2 processes outside it
// spinning on a core, at nice 0 and at nice 15 (where isolated-vm's lowest threads run). What the
// neighbour sees then is what any CPU taken on this machine costs it: the floor under the 2x target.
//
// Output: a table on stdout, bench/results/attacks-<timestamp>.json, latest-attacks.json.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeanClient } from './lib/client.mjs';
import { benchDir, environment, startCinderServe } from './lib/procs.mjs';
import { fmtMs, sleep, summarize, table } from './lib/stats.mjs';
import { ATTACKS, NEIGHBOUR, NEIGHBOUR_BODY, deployAttack, workerName } from './lib/attack-workers.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const flag = (name, fallback) => {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.split('=')[1]) : fallback;
};
const SECONDS = flag('seconds', quick ? 2 : 6);
const CLIENTS = flag('clients', 2);
const ATTACKERS = flag('attackers', 3);
const only = args.find((a) => a.startsWith('--only='))?.split('=')[1]?.split(',');
// --root=DIR: serve from another checkout (an A/B: the same phases against main's build)
const root = args.find((a) => a.startsWith('--root='))?.split('=')[1];
// --env=NAME=VALUE (repeatable): the server's environment (CINDER_* variables are not passed on
// otherwise), e.g. --env=CINDER_GUEST_THREAD_NICE=0 for an A/B of isolate thread priority
const env = Object.fromEntries(args.filter((a) => a.startsWith('--env=')).map((a) => a.slice(6).split(/=(.*)/s).slice(0, 2)));

/** Entries of `worker` the serving thread's share deferred so far (null: the server has no share). */
async function deferredOf(server, worker) {
  try {
    const res = await fetch(`http://127.0.0.1:${server.adminPort}/metrics`, { headers: { authorization: `Bearer ${server.token}` } });
    const text = await res.text();
    if (!text.includes('cinder_serving_share_deferred_total')) return null;
    let n = 0;
    for (const m of text.matchAll(/^cinder_serving_share_deferred_total\{([^}]*)\} (\d+)/gm)) if (m[1].includes(`worker="${worker}"`)) n += Number(m[2]);
    return n;
  } catch {
    return null;
  }
}

/** Load the neighbour from CLIENTS connections until `stop` resolves; latencies and failures. */
async function neighbourLoad(port, until) {
  const latencies = [];
  let failures = 0;
  const reasons = new Map();
  const loop = async () => {
    let client = new LeanClient({ port });
    while (performance.now() < until) {
      try {
        const res = await client.get('/', 'neighbour.bench', { timeoutMs: 10_000 });
        if (res.status === 200 && res.body.toString() === NEIGHBOUR_BODY) latencies.push(res.ms);
        else {
          failures++;
          reasons.set(`status ${res.status}`, (reasons.get(`status ${res.status}`) ?? 0) + 1);
        }
      } catch (error) {
        failures++;
        reasons.set(error.message, (reasons.get(error.message) ?? 0) + 1);
        client.close();
        client = new LeanClient({ port });
      }
    }
    client.close();
  };
  await Promise.all(Array.from({ length: CLIENTS }, loop));
  return { latencies, failures, reasons: Object.fromEntries(reasons) };
}

/** The attacker: ATTACKERS connections requesting its worker in a loop until `until`. */
async function attackLoad(port, name, until) {
  const statuses = new Map();
  const loop = async () => {
    let client = new LeanClient({ port });
    while (performance.now() < until) {
      try {
        const res = await client.get('/', `${name}.bench`, { timeoutMs: 60_000 });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        // an SSRF attempt that got through would say so in its body
        if (res.body.toString().includes('REACHED')) statuses.set('REACHED', (statuses.get('REACHED') ?? 0) + 1);
      } catch {
        statuses.set('error', (statuses.get('error') ?? 0) + 1);
        client.close();
        client = new LeanClient({ port });
        await sleep(10);
      }
    }
    client.close();
  };
  await Promise.all(Array.from({ length: ATTACKERS }, loop));
  return Object.fromEntries(statuses);
}

const workDir = mkdtempSync(join(tmpdir(), 'cinder-attacks-'));
const neighbourFile = join(workDir, 'neighbour.js');
writeFileSync(neighbourFile, NEIGHBOUR);
const server = await startCinderServe({ neighbour: neighbourFile }, { env, ...(root ? { root } : {}) });

// --floor: busy processes outside Cinder (name -> [count, nice])
const OUTSIDE = {
  '1 busy process outside (nice 0)': [1, 0],
  '2 busy processes outside (nice 0)': [2, 0],
  '1 busy process outside (nice 15)': [1, 15],
  '2 busy processes outside (nice 15)': [2, 15],
};
const floorPhases = args.includes('--floor') ? Object.keys(OUTSIDE).filter((name) => !only || only.includes(name)).map((name) => [name, null]) : [];
const phases = [['calm', null], ...Object.entries(ATTACKS).filter(([name]) => !only || only.includes(name)), ...floorPhases];
for (const [name, attack] of phases) if (attack) await deployAttack(server, workerName(name), attack);

/** Start `count` processes spinning at `nice`; answers a function that kills them. */
function busyOutside([count, nice]) {
  const children = Array.from({ length: count }, () => spawn('nice', ['-n', String(nice), process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' }));
  return () => {
    for (const child of children) child.kill('SIGKILL');
  };
}
// warm the neighbour before measuring
await neighbourLoad(server.port, performance.now() + 500);

const results = [];
try {
  for (const [name, attack] of phases) {
    const worker = workerName(name);
    const until = performance.now() + SECONDS * 1000;
    const rssBefore = server.rssMb();
    const stopBusy = OUTSIDE[name] ? busyOutside(OUTSIDE[name]) : null;
    const [neighbour, attacker] = await Promise.all([neighbourLoad(server.port, until), attack ? attackLoad(server.port, worker, until) : Promise.resolve(null)]);
    stopBusy?.();
    const s = summarize(neighbour.latencies);
    const deferred = attack ? await deferredOf(server, worker) : null;
    const neighbourDeferred = await deferredOf(server, 'neighbour');
    results.push({ deferred, neighbourDeferred, phase: name, what: attack?.[2] ?? (OUTSIDE[name] ? 'busy processes outside Cinder (floor control)' : 'no attack'), requests: neighbour.latencies.length + neighbour.failures, failures: neighbour.failures, reasons: neighbour.reasons, p50: s?.p50, p99: s?.p99, max: s?.max, attacker, rssMbBefore: rssBefore, rssMbAfter: server.rssMb() });
    process.stderr.write(`${name}: ${neighbour.failures} failures, p99 ${fmtMs(s?.p99)} ms, attacker ${JSON.stringify(attacker)}, attacker entries deferred so far ${deferred}, neighbour's ${neighbourDeferred}\n`);
    if (attack) await sleep(500); // let the attack's last requests drain
  }
} finally {
  await server.stop();
  rmSync(workDir, { recursive: true, force: true });
}

const calm = results[0];
const rows = [['phase', 'neighbour req', 'failed', 'p50 ms', 'p99 ms', 'p99 / calm', 'attacker answers']];
for (const r of results) rows.push([r.phase, String(r.requests), String(r.failures), fmtMs(r.p50), fmtMs(r.p99), r === calm ? '1.00x' : `${(r.p99 / calm.p99).toFixed(2)}x`, r.attacker ? Object.entries(r.attacker).map(([k, v]) => `${k}:${v}`).join(' ') : '-']);
console.log(table(rows));
const failed = results.filter((r) => r.failures > 0).map((r) => r.phase);
const slow = results.filter((r) => r !== calm && !OUTSIDE[r.phase] && r.p99 >= 2 * calm.p99).map((r) => r.phase);
console.log(`\ntargets: zero neighbour failures ${failed.length ? `MISSED (${failed.join(', ')})` : 'met'}; p99 under attack < 2x calm ${slow.length ? `MISSED (${slow.join(', ')})` : 'met'}`);
console.log(`${SECONDS} s per phase, ${CLIENTS} neighbour connections, ${ATTACKERS} attacker connections${quick ? ' (--quick)' : ''}`);

const resultsDir = join(benchDir, 'results');
mkdirSync(resultsDir, { recursive: true });
const out = { bench: 'attacks', at: new Date().toISOString(), root: root ?? null, seconds: SECONDS, clients: CLIENTS, attackers: ATTACKERS, quick, environment: await environment(), results };
const stamp = out.at.replace(/[:.]/g, '-');
writeFileSync(join(resultsDir, `attacks-${stamp}.json`), JSON.stringify(out, null, 2));
writeFileSync(join(resultsDir, 'latest-attacks.json'), JSON.stringify(out, null, 2));
