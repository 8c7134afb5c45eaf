// What one attacking request costs the serving process, thread by thread (issue 22), as an
// interleaved A/B of two checkouts: `cinder serve` from each --roots entry, the same attack worker
// (bench/lib/attack-workers.mjs) deployed on both, and per round each server is sent --requests
// requests from --connections keep-alive connections, in alternating order. Read from /proc before
// and after each batch: the serving child's main thread (the one that serves every tenant), the
// whole serving child, and the wall time. Figures are CPU µs per attacking request, medians
// over the rounds.
//
//   npx node --no-node-snapshot bench/attack-cost.mjs --roots=/work/main,. --attack=fan-out [--requests=20] [--connections=3] [--rounds=5]
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LeanClient } from './lib/client.mjs';
import { rootDir, startCinderServe } from './lib/procs.mjs';
import { table } from './lib/stats.mjs';
import { ATTACKS, deployAttack, workerName } from './lib/attack-workers.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const roots = opt('roots', rootDir).split(',').map((r) => resolve(r));
const attack = opt('attack', 'fan-out');
const REQUESTS = Number(opt('requests', 20));
const CONNECTIONS = Number(opt('connections', 3));
const ROUNDS = Number(opt('rounds', 5));
const chosen = ATTACKS[attack] ?? (() => { throw new Error(`no attack named ${attack}: ${Object.keys(ATTACKS).join(', ')}`); })();

const TICK_US = 10_000; // /proc counts in clock ticks of 10 ms

function ticks(path) {
  const fields = readFileSync(path, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** The serving child of a supervisor (`cinder serve`'s only child process). */
function servingChild(pid) {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean);
    if (children.length) return Number(children[0]);
  }
  throw new Error(`cinder serve (${pid}) has no serving child`);
}

function reading(child) {
  return { main: ticks(`/proc/${child}/task/${child}/stat`), all: ticks(`/proc/${child}/stat`), at: performance.now() };
}

async function batch(port, name, n) {
  let next = 0;
  const statuses = {};
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    const client = new LeanClient({ port });
    while (next < n) {
      next++;
      const res = await client.get('/', `${name}.bench`, { timeoutMs: 60_000 });
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    }
    client.close();
  }));
  return statuses;
}

const name = workerName(attack);
const servers = [];
for (const root of roots) {
  const server = await startCinderServe({}, { root });
  await deployAttack(server, name, chosen);
  servers.push({ root, server, child: servingChild(server.pid), rounds: [] });
}
try {
  for (const s of servers) await batch(s.server.port, name, Math.max(3, REQUESTS / 4)); // warm
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...servers].reverse() : servers;
    for (const s of order) {
      const before = reading(s.child);
      const statuses = await batch(s.server.port, name, REQUESTS);
      const after = reading(s.child);
      s.rounds.push({ mainUs: ((after.main - before.main) * TICK_US) / REQUESTS, allUs: ((after.all - before.all) * TICK_US) / REQUESTS, wallMs: (after.at - before.at) / REQUESTS, statuses });
    }
  }
} finally {
  for (const s of servers) await s.server.stop();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [['checkout', 'main thread µs/req', 'process µs/req', 'wall ms/req', 'per round (main thread)', 'answers']];
for (const s of servers) {
  rows.push([s.root, String(Math.round(median(s.rounds.map((r) => r.mainUs)))), String(Math.round(median(s.rounds.map((r) => r.allUs)))), median(s.rounds.map((r) => r.wallMs)).toFixed(1), s.rounds.map((r) => Math.round(r.mainUs)).join(' / '), JSON.stringify(s.rounds.at(-1).statuses)]);
}
console.log(table(rows));
console.log(`${attack}: ${ROUNDS} rounds of ${REQUESTS} requests from ${CONNECTIONS} connections, alternating; ${new Date().toISOString()}`);
