// A neighbour's D1 query while another worker floods the D1 executors, in-process, interleaved A/B:
// `npx node bench/executor-fairness.mjs [--rounds=10] [--flood=30]` (after `npm run build`).
//
// One D1Service (two executor processes, as `cinder serve` has). Each round, the attacker submits
// --flood slow queries (a 200,000-row recursive CTE each) on its database, then the neighbour one
// SELECT on its own. Variant "one queue" submits the neighbour's query as the attacker's tenant:
// every query waits in one FIFO, which is what the executors did before they knew tenants.
// Variant "turns" submits it as its own worker. Reported: the neighbour's latency (ms), p50/p90.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootDir } from './lib/procs.mjs';

const { D1Service } = await import(join(rootDir, 'dist', 'bindings', 'd1', 'index.js'));
const arg = (name, fallback) => Number(process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const rounds = arg('rounds', 10);
const flood = arg('flood', 30);

const dataDir = mkdtempSync(join(tmpdir(), 'cinder-bench-fair-'));
const service = new D1Service({ dataDir });
const SLOW = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 200000) SELECT count(*) AS n FROM c';
const attacker = { tenant: { account: 'default', worker: 'attacker' } };
const neighbourDb = { account: 'default', id: 'neighbour' };
await service.exec(neighbourDb, 'CREATE TABLE IF NOT EXISTS t (v); INSERT INTO t VALUES (1);');

const samples = { 'one queue': [], turns: [] };
for (let i = 0; i < rounds * 2; i++) {
  const variant = i % 2 === 0 ? 'one queue' : 'turns';
  // (several attacker databases: in a pool its queries could otherwise run only one at a time)
  const jobs = Array.from({ length: flood }, (_, j) => service.query({ account: 'default', id: `attacker-${j % 4}` }, [{ sql: SLOW, params: [] }], attacker));
  await new Promise((resolve) => setTimeout(resolve, 5));
  const caller = variant === 'one queue' ? attacker : { tenant: { account: 'default', worker: 'neighbour' } };
  const started = performance.now();
  await service.query(neighbourDb, [{ sql: 'SELECT v FROM t', params: [] }], caller);
  samples[variant].push(performance.now() - started);
  await Promise.all(jobs);
}
service.close();
rmSync(dataDir, { recursive: true, force: true });

const pct = (values, p) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(p * values.length))];
console.log(`neighbour's query while ${flood} slow queries of another worker wait (${rounds} rounds each, interleaved)`);
for (const [variant, values] of Object.entries(samples)) console.log(`${variant.padEnd(10)} p50 ${pct(values, 0.5).toFixed(1).padStart(8)} ms   p90 ${pct(values, 0.9).toFixed(1).padStart(8)} ms`);
