// In-process cost of metering usage on the warm path: UsageMeter.record() for N invocations with
// the SQLite store, writes batched every 100 ms (the default) against never written (the write cost
// is what the batching adds). Run: npx node --no-node-snapshot bench/usage-flush.mjs
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteUsageStore, UsageMeter } from '../dist/src/observability/usage.js';

const N = Number(process.argv[2] ?? 200_000);
const WORKERS = 50;
const record = (i) => ({ worker: `w${i % WORKERS}`, version: 'v1', requestId: String(i), kind: 'fetch', outcome: 'ok', cpuMs: 0.05 + (i % 7) * 0.01, wallMs: 0.3 + (i % 11) * 0.05, subrequests: 0, bytesIn: 0, bytesOut: 12, memoryBytes: 1_500_000, peakMemoryBytes: 2_000_000, logLinesDropped: 0, hostWorkMs: 0 });

async function run(flushIntervalMs) {
  const dir = mkdtempSync(join(tmpdir(), 'cinder-usage-bench-'));
  const store = new SqliteUsageStore(join(dir, 'usage.sqlite'));
  const meter = new UsageMeter({ store, flushIntervalMs });
  let writes = 0;
  let writeMs = 0;
  const add = store.add.bind(store);
  store.add = async (rows) => {
    const t = performance.now();
    await add(rows);
    writeMs += performance.now() - t;
    writes++;
  };
  // ~10k requests per second of simulated traffic: 1000 records, then yield 100 ms of event loop
  const cpuStart = process.cpuUsage();
  const t0 = performance.now();
  let recordMs = 0;
  for (let i = 0; i < N; i += 1000) {
    const t = performance.now();
    for (let j = i; j < i + 1000; j++) meter.record(record(j));
    recordMs += performance.now() - t;
    await new Promise((r) => setTimeout(r, 100));
  }
  await meter.close();
  const cpu = process.cpuUsage(cpuStart);
  const elapsed = performance.now() - t0;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { flushIntervalMs, records: N, writes, recordUsPerRequest: (recordMs * 1000) / N, writeMsPerBatch: writes ? writeMs / writes : 0, writeUsPerRequest: (writeMs * 1000) / N, processCpuMs: (cpu.user + cpu.system) / 1000, elapsedMs: elapsed };
}

console.table([await run(0), await run(100)]);
