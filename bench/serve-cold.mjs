// Issue 23's user measurement, reproduced: `npx node --no-node-snapshot bench/serve-cold.mjs [--n=300]`.
//
// The real CLI (`cinder serve`, defaults, embedded storage), N different hello workers deployed
// through the admin API, then the server restarted so that nothing is live. Each worker is then hit
// once cold and at once again warm, back to back over one kept-alive connection (a lean raw-socket
// client), with no pause: N cold starts as fast as the server answers them. Reported: bring-up
// (Server-Timing `cold`) p50/p99, client cold and warm p50, the median of each worker's
// cold-minus-warm, the cold-start rate reached and the pool's misses (from /metrics).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeanClient, parseServerTiming } from './lib/client.mjs';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';
import { startCinderServe } from './lib/procs.mjs';
import { fmtMs, sleep, summarize, table } from './lib/stats.mjs';

const argv = process.argv.slice(2);
const N = Number(argv.find((a) => a.startsWith('--n='))?.split('=')[1] ?? 300);

await buildWorkers();
const hello = readFileSync(join(buildDir, 'hello.mjs'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'cinder-serve-cold-'));
const files = {};
for (let i = 0; i < N; i++) {
  files[`h${i}`] = join(dir, `h${i}.mjs`);
  writeFileSync(files[`h${i}`], `${hello}\n// worker h${i}\n`);
}

async function metric(server, name) {
  const res = await fetch(`http://127.0.0.1:${server.adminPort}/metrics`, { headers: { authorization: `Bearer ${server.token}` } });
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : null;
}

process.stderr.write(`[serve-cold] deploying ${N} hello workers through the admin API...\n`);
const server = await startCinderServe(files, { timeoutMs: 120_000 });
let result;
try {
  await server.restart();
  await sleep(1000); // the restarted server fills its pool (min) before the first request
  const live = await metric(server, 'cinder_live_isolates');
  const missesBefore = (await metric(server, 'cinder_pool_misses_total')) ?? 0;
  const client = new LeanClient({ port: server.port });
  const cold = { client: [], bringUp: [], total: [] };
  const warm = [];
  const diff = [];
  let errors = 0;
  let notCold = 0;
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    const host = `h${i}.bench`;
    const a = await client.get('/', host);
    const b = await client.get('/', host);
    if (a.status !== 200 || b.status !== 200) errors++;
    const timing = parseServerTiming(a.headers['server-timing']);
    if (timing.cold === undefined) notCold++;
    else cold.bringUp.push(timing.cold);
    if (timing.total !== undefined) cold.total.push(timing.total);
    cold.client.push(a.ms);
    warm.push(b.ms);
    diff.push(a.ms - b.ms);
  }
  const seconds = (performance.now() - started) / 1000;
  client.close();
  const missesAfter = (await metric(server, 'cinder_pool_misses_total')) ?? 0;
  result = {
    n: N,
    liveBefore: live,
    errors,
    notCold,
    coldPerSecond: N / seconds,
    poolMisses: missesAfter - missesBefore,
    bringUp: summarize(cold.bringUp),
    serverTotal: summarize(cold.total),
    clientCold: summarize(cold.client),
    clientWarm: summarize(warm),
    coldMinusWarm: summarize(diff),
  };
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

const r = result;
console.log(`cinder serve, ${r.n} hello workers, restarted (live isolates before: ${r.liveBefore}), each cold then warm, back to back`);
console.log(
  table([
    ['measure', 'p50', 'p90', 'p99'],
    ['bring-up (Server-Timing cold)', fmtMs(r.bringUp?.p50), fmtMs(r.bringUp?.p90), fmtMs(r.bringUp?.p99)],
    ['server total, cold', fmtMs(r.serverTotal?.p50), fmtMs(r.serverTotal?.p90), fmtMs(r.serverTotal?.p99)],
    ['client, cold', fmtMs(r.clientCold?.p50), fmtMs(r.clientCold?.p90), fmtMs(r.clientCold?.p99)],
    ['client, warm', fmtMs(r.clientWarm?.p50), fmtMs(r.clientWarm?.p90), fmtMs(r.clientWarm?.p99)],
    ['client, cold minus warm (per worker)', fmtMs(r.coldMinusWarm?.p50), fmtMs(r.coldMinusWarm?.p90), fmtMs(r.coldMinusWarm?.p99)],
  ]),
);
console.log(`${r.coldPerSecond.toFixed(0)} cold starts a second; ${r.poolMisses} pool misses; ${r.errors} errors; ${r.notCold} not cold`);
process.exit(0);
