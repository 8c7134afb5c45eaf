// The ready pool sizes itself from the cold-start rate it sees, refills several isolates at once on
// isolated-vm's threads, and a storm of cold starts that outruns it is slower, never failed
// (issue 23: a pool that keeps up).
import { describe, expect, it } from 'vitest';
import { captureLogger } from '../helpers/server.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { loadIsolateSource } from '../../src/runtime/isolate-source.js';
import { IsolatePool } from '../../src/runtime/pool.js';
import { singleScriptWorker } from '../../src/model/worker-definition.js';

const GET = { method: 'GET', url: 'http://x.test/', headers: [] as [string, string][], body: null };

describe('pool sizing', () => {
  it('aims for the recent cold-start rate times the refill horizon, within min and max, and decays', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    let now = 1_000_000;
    const pool = new IsolatePool(source, { min: 2, max: 8 }, () => now);
    await pool.fill();
    expect(pool.target()).toBe(2);
    expect(pool.stats().ratePerSecond).toBe(0);
    // 20 cold starts at once: a rate of 20 a second (decaying count over a 1 s time constant).
    const taken = await Promise.all(Array.from({ length: 20 }, () => pool.take(128)));
    for (const isolate of taken) isolate.dispose('test');
    expect(pool.stats().ratePerSecond).toBeCloseTo(20, 5);
    expect(pool.stats().taken).toBe(20);
    // 20/s over at least half a second is 10: capped at max.
    expect(pool.target()).toBe(8);
    const horizon = () => Math.max(0.5, (pool.stats().refillMs + 50) / 1000);
    // One time constant later the rate is 20/e.
    now += 1000;
    expect(pool.stats().ratePerSecond).toBeCloseTo(20 / Math.E, 5);
    expect(pool.target()).toBe(Math.max(2, Math.min(8, Math.ceil((20 / Math.E) * horizon() - 0.01))));
    // Quiet for a while: back to the floor.
    now += 10_000;
    expect(pool.target()).toBe(2);
    pool.close();
  });

  it('refills several isolates at once, never more than parallelBuilds', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    const pool = new IsolatePool(source, { min: 6, max: 6, parallelBuilds: 3 });
    let most = 0;
    for (let i = 0; i < 3000 && pool.stats().ready < 6; i++) {
      most = Math.max(most, pool.stats().building);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(pool.stats().ready).toBe(6);
    expect(most).toBeGreaterThanOrEqual(2);
    expect(most).toBeLessThanOrEqual(3);
    expect(pool.stats().created).toBe(6);
    pool.close();
  });

  it('refills at once, without waiting for a quiet moment, while cold starts outrun it', async () => {
    const { logger } = captureLogger();
    const source = await loadIsolateSource({ logger });
    const now = 1_000_000;
    // Never quiet, and a refill at the floor would wait a minute for a quiet moment.
    const pool = new IsolatePool(source, { min: 1, max: 8, isBusy: () => true, maxRefillDeferMs: 60_000, parallelBuilds: 2 }, () => now);
    const taken = await Promise.all(Array.from({ length: 20 }, () => pool.take(128)));
    for (const isolate of taken) isolate.dispose('test');
    expect(pool.target()).toBe(8);
    // Behind (under half its target): builds start at once, busy or not, until half is there.
    for (let i = 0; i < 1000 && pool.stats().ready < 4; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(pool.stats().ready).toBeGreaterThanOrEqual(4);
    // Then the rest waits for a quiet moment again.
    for (let i = 0; i < 1000 && pool.stats().building > 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(pool.stats().ready).toBeLessThan(8);
    pool.close();
  });
});

describe('cold-start storm', () => {
  it('never fails a request when cold starts outrun the pool: misses are made inline, off-thread', async () => {
    const { logger } = captureLogger();
    const runtime = await Runtime.create({ logger, pool: { min: 1, max: 3 } });
    const N = 40;
    for (let i = 0; i < N; i++) runtime.deploy(singleScriptWorker(`s${i}`, `export default { fetch() { return new Response('hello ${i}') } }`));
    // All at once: far more cold starts than ready isolates.
    const burst = await Promise.all(Array.from({ length: N }, (_, i) => runtime.fetch(`s${i}`, GET)));
    expect(burst.map((r) => r.status)).toEqual(Array(N).fill(200));
    expect(burst.map((r) => r.body)).toEqual(Array.from({ length: N }, (_, i) => `hello ${i}`));
    expect(burst.every((r) => r.coldMs !== null)).toBe(true);
    // Then back to back, each evicted first so that each is cold again.
    for (let i = 0; i < N; i++) runtime.evict(`s${i}`);
    const sequential = [];
    for (let i = 0; i < N; i++) sequential.push(await runtime.fetch(`s${i}`, GET));
    expect(sequential.map((r) => r.status)).toEqual(Array(N).fill(200));
    expect(sequential.every((r) => r.coldMs !== null)).toBe(true);
    const stats = runtime.poolStats();
    expect(runtime.coldStarts).toBe(2 * N);
    expect(stats.taken).toBe(2 * N);
    expect(stats.misses).toBeGreaterThan(0); // the storm did outrun the pool
    expect(stats.misses).toBeLessThan(2 * N);
    // The rate it saw raised the pool's target to its cap, and the pool fills back up.
    expect(stats.target).toBe(3);
    for (let i = 0; i < 500 && runtime.poolStats().ready < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(runtime.poolStats().ready).toBe(3);
    runtime.close();
  }, 60_000);
});
