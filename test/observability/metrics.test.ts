// GET /metrics on the admin port: Prometheus text that parses, every name cinder_*, labelled by
// worker where there is one, and counters that move with traffic: requests by outcome, CPU and wall
// histograms, cold starts, isolates (scale to zero and up), evictions, pool, KV operations.
import { BURN_SOURCE, burnIterations } from '../helpers/burn.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { installKV, KVService, MemoryBackend } from '../../bindings/kv/index.js';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';
import { parseMetrics, sample, waitFor, type Sample } from './helpers.js';

describe('GET /metrics', () => {
  let cinder: TestCinder;
  let kv: KVService;

  beforeAll(async () => {
    kv = new KVService({ backend: new MemoryBackend() });
    cinder = await startCinder({
      // Long enough that a loaded machine cannot expire an isolate between two steps of a test.
      runtime: { pool: { min: 2 }, idleTtlMs: 3000 },
      extensions: [{ name: 'kv', setup: ({ runtime }) => installKV(runtime, kv) }],
    });
    const deploy = async (name: string, code: string, metadata: Record<string, unknown> = {}) => {
      const res = await cinder.admin('PUT', `/workers/${name}`, { body: multipart({ main_module: 'index.js', ...metadata }, { 'index.js': code }) });
      expect(res.status, res.text).toBe(201);
    };
    await deploy('hello', `export default { fetch() { return new Response('hi') } }`);
    await deploy('oops', `export default { fetch() { throw new Error('oops') } }`);
    await deploy(
      'counter',
      `export default { async fetch(request, env) {
        const n = Number(await env.STORE.get('n') ?? 0) + 1;
        await env.STORE.put('n', String(n));
        return new Response(String(n));
      } }`,
      { bindings: [{ type: 'kv_namespace', name: 'STORE', namespace_id: 'counts' }] },
    );
  });
  afterAll(async () => {
    await cinder?.close({ cleanup: true });
    await kv?.close();
  });

  const scrape = async (): Promise<Sample[]> => {
    const res = await cinder.admin('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseMetrics(res.text).samples;
  };

  it('parses, and every metric is cinder_*', async () => {
    const res = await cinder.admin('GET', '/metrics');
    const { samples, types, help } = parseMetrics(res.text);
    expect(samples.length).toBeGreaterThan(20);
    for (const s of samples) expect(s.name).toMatch(/^cinder_/);
    for (const name of types.keys()) {
      expect(name).toMatch(/^cinder_/);
      expect(help.get(name)).toBeTruthy();
    }
    for (const name of ['cinder_requests_total', 'cinder_cold_starts_total', 'cinder_isolate_evictions_total', 'cinder_kv_operations_total', 'cinder_scheduled_runs_total']) {
      expect(types.get(name)).toBe('counter');
    }
    expect(types.get('cinder_invocation_cpu_seconds')).toBe('histogram');
    expect(types.get('cinder_invocation_wall_seconds')).toBe('histogram');
    expect(types.get('cinder_live_isolates')).toBe('gauge');
    expect(types.get('cinder_worker_isolates')).toBe('gauge');
    expect(types.get('cinder_pool_ready_isolates')).toBe('gauge');
    expect(sample(samples, 'cinder_workers')).toBe(3);
    // prom-client's process metrics, under the cinder_ prefix.
    expect(sample(samples, 'cinder_process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('needs the admin token', async () => {
    expect((await cinder.admin('GET', '/metrics', { headers: { authorization: '' } })).status).toBe(401);
  });

  it('moves with traffic: requests by worker and outcome, CPU and wall histograms, cold starts, isolates', async () => {
    const before = await scrape();
    for (let i = 0; i < 5; i++) expect((await cinder.get('hello.example.com')).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await cinder.get('oops.example.com')).status).toBe(500);
    // An invocation's record can follow its response by a moment (the CPU clock settling).
    const after = await waitFor(async () => {
      const s = await scrape();
      return sample(s, 'cinder_requests_total', { worker: 'oops', outcome: 'exception' }) - sample(before, 'cinder_requests_total', { worker: 'oops', outcome: 'exception' }) === 2 &&
        sample(s, 'cinder_requests_total', { worker: 'hello', outcome: 'ok' }) - sample(before, 'cinder_requests_total', { worker: 'hello', outcome: 'ok' }) === 5 && s;
    }, { what: 'the counters to count every request' });
    const delta = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
    expect(delta('cinder_requests_total', { worker: 'hello', outcome: 'ok' })).toBe(5);
    expect(delta('cinder_requests_total', { worker: 'oops', outcome: 'exception' })).toBe(2);
    expect(delta('cinder_requests_total', { worker: 'oops', outcome: 'ok' })).toBe(0);
    expect(delta('cinder_invocation_cpu_seconds_count', { worker: 'hello' })).toBe(5);
    expect(delta('cinder_invocation_wall_seconds_count', { worker: 'hello' })).toBe(5);
    expect(sample(after, 'cinder_invocation_cpu_seconds_sum', { worker: 'hello' })).toBeGreaterThan(0);
    expect(sample(after, 'cinder_invocation_wall_seconds_bucket', { worker: 'hello', le: '+Inf' })).toBe(sample(after, 'cinder_invocation_wall_seconds_count', { worker: 'hello' }));
    expect(sample(after, 'cinder_cold_starts_total', { worker: 'hello' })).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'cinder_worker_isolates', { worker: 'hello' })).toBe(1);
    expect(sample(after, 'cinder_live_isolates')).toBeGreaterThanOrEqual(2);
    expect(sample(after, 'cinder_pool_isolates_created_total')).toBeGreaterThan(0);
    expect(sample(after, 'cinder_pool_takes_total')).toBeGreaterThanOrEqual(2);
    expect(sample(after, 'cinder_request_bytes_total', { worker: 'hello', direction: 'out' }) - sample(before, 'cinder_request_bytes_total', { worker: 'hello', direction: 'out' })).toBe(10);
  });

  it('shows scale to zero: idle isolates evicted, the worker at 0 isolates, a cold start when it comes back', async () => {
    expect((await cinder.get('hello.example.com')).status).toBe(200);
    const live = await scrape();
    expect(sample(live, 'cinder_worker_isolates', { worker: 'hello' })).toBe(1);
    const idle = await waitFor(async () => {
      const s = await scrape();
      return sample(s, 'cinder_worker_isolates', { worker: 'hello' }) === 0 && s;
    }, { what: 'hello to scale to zero', interval: 100 });
    expect(sample(idle, 'cinder_isolate_evictions_total', { reason: 'idle' })).toBeGreaterThan(sample(live, 'cinder_isolate_evictions_total', { reason: 'idle' }));
    expect((await cinder.get('hello.example.com')).status).toBe(200);
    const back = await scrape();
    expect(sample(back, 'cinder_worker_isolates', { worker: 'hello' })).toBe(1);
    expect(sample(back, 'cinder_cold_starts_total', { worker: 'hello' })).toBe(sample(idle, 'cinder_cold_starts_total', { worker: 'hello' }) + 1);
  });

  it('shows scale up: a saturated worker on more than one isolate', async () => {
    const put = await cinder.admin('PUT', '/workers/burn', {
      body: multipart({ main_module: 'index.js', limits: { cpu_ms: 500 } }, { 'index.js': `${BURN_SOURCE}\nexport default { fetch() { burnLoop(${burnIterations(15)}); return new Response('ok') } }` }),
    });
    expect(put.status).toBe(201);
    const agent = new Agent({ connections: 12 });
    let maxIsolates = 0;
    const statuses: number[] = [];
    // Saturation is CPU time over wall time: on a loaded machine it takes longer to show.
    const deadline = Date.now() + 8000;
    const scraper = (async () => {
      while (Date.now() < deadline && maxIsolates < 2) {
        maxIsolates = Math.max(maxIsolates, sample(await scrape(), 'cinder_worker_isolates', { worker: 'burn' }));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await Promise.all(
        Array.from({ length: 12 }, async () => {
          while (Date.now() < deadline && maxIsolates < 2) {
            const res = await request(`${cinder.server.url}/`, { headers: { host: 'burn.example.com' }, dispatcher: agent });
            await res.body.text();
            statuses.push(res.statusCode);
          }
        }),
      );
      await scraper;
    } finally {
      await agent.close();
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(maxIsolates).toBeGreaterThan(1);
    expect(sample(await scrape(), 'cinder_cold_starts_total', { worker: 'burn' })).toBeGreaterThan(1);
    expect((await cinder.admin('DELETE', '/workers/burn')).status).toBe(200);
  });

  it('counts KV operations by worker, operation and namespace', async () => {
    expect((await cinder.get('counter.example.com')).text).toBe('1');
    expect((await cinder.get('counter.example.com')).text).toBe('2');
    const s = await waitFor(async () => {
      const scraped = await scrape();
      return sample(scraped, 'cinder_kv_operations_total', { worker: 'counter', op: 'put', namespace: 'counts' }) === 2 && scraped;
    }, { what: 'two KV puts' });
    expect(sample(s, 'cinder_kv_operations_total', { worker: 'counter', op: 'get', namespace: 'counts' })).toBe(2);
    expect(sample(s, 'cinder_kv_operations_total', { worker: 'counter', op: 'put', namespace: 'counts' })).toBe(2);
  });

  it('counts redeploy evictions and drops a deleted worker\'s series', async () => {
    expect((await cinder.get('oops.example.com')).status).toBe(500);
    const before = await scrape();
    const put = await cinder.admin('PUT', '/workers/oops', { body: multipart({ main_module: 'index.js' }, { 'index.js': `export default { fetch() { return new Response('fixed') } }` }) });
    expect(put.status).toBe(201);
    expect((await cinder.get('oops.example.com')).text).toBe('fixed');
    const after = await scrape();
    expect(sample(after, 'cinder_isolate_evictions_total', { reason: 'redeploy' })).toBeGreaterThan(sample(before, 'cinder_isolate_evictions_total', { reason: 'redeploy' }));
    expect((await cinder.admin('DELETE', '/workers/oops')).status).toBe(200);
    const gone = await scrape();
    expect(gone.filter((s) => s.labels.worker === 'oops')).toEqual([]);
    expect(sample(gone, 'cinder_workers')).toBe(2);
  });
});
