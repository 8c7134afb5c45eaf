// Hostile tenants and D1's executor processes: a worker flooding the process its databases share
// with a neighbour's gets turns, not the whole process; past its waiting cap it is refused by
// name; a query outlives neither its deadline nor its invocation; the executor's CPU is metered
// to the worker that caused it; a batch's bytes and a dump are bounded. Every neighbour answer is
// checked, failures counted; orders and counts, not timings.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { d1Binding, startD1Harness, type D1Harness } from './fixtures.js';
import type { InvocationRecord } from '../../src/runtime/invocation.js';
import { summarize, emptyMinute, addRecord } from '../../src/observability/usage.js';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { D1Service } from '../../bindings/d1/index.js';

const SLOW = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 200000) SELECT count(*) AS n FROM c`;
const RUNAWAY = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';

/** A worker answering {ok} or {error} as JSON (test/d1/fixtures.ts's shape), deployed with limits. */
function worker(body: string): string {
  return `export default {
    async fetch(request, env) {
      try { return Response.json({ ok: await (async () => { ${body} })() }); }
      catch (e) { return Response.json({ error: { message: e.message } }); }
    },
  };`;
}

describe('D1 executors shared by tenants', () => {
  let h: D1Harness;
  const records: InvocationRecord[] = [];
  beforeAll(async () => {
    // One process: every database is sharded to it. A deadline far past the test timeout: a
    // query left running after its invocation ended would hold the process past the test's end.
    h = await startD1Harness({ processes: 1, timeoutMs: 120_000, maxQueuedPerWorker: 10, maxResultBytes: 64 * 1024 });
    h.server.runtime.onInvocation((record) => records.push(record));
    await h.run(`await env.DB.exec('CREATE TABLE kept (v TEXT)'); await env.DB.prepare("INSERT INTO kept VALUES ('before')").run(); return 1;`, { DB: d1Binding('neighbour-db') }, 'setup');
  });
  afterAll(() => h.close());

  const neighbourBody = `return (await env.DB.prepare('SELECT v FROM kept').all()).results;`;

  it("a flood of slow queries from one worker: a neighbour's query (another database, same process) is answered before the flood is", async () => {
    h.server.deploy('flooder', { code: worker(`return (await Promise.all(Array.from({ length: 10 }, () => env.DB.prepare(\`${SLOW}\`).first('n')))).length;`), bindings: { DB: d1Binding('flood-db') } });
    h.server.deploy('neighbour', { code: worker(neighbourBody), bindings: { DB: d1Binding('neighbour-db') } });
    const order: string[] = [];
    const flood = h.server.request('flooder', '/').then((res) => (order.push('flood'), res));
    // (the flood's queries are waiting by the time the neighbour asks: a first one of them has run)
    await h.service.query({ account: 'default', id: 'flood-db' }, [{ sql: SLOW, params: [] }]);
    const neighbour = await h.server.request('neighbour', '/');
    order.push('neighbour');
    expect(JSON.parse(neighbour.text)).toEqual({ ok: [{ v: 'before' }] });
    expect(JSON.parse((await flood).text)).toEqual({ ok: 10 });
    expect(order).toEqual(['neighbour', 'flood']);
  });

  it("refuses a worker's queries past its waiting cap with D1's overloaded error, and the neighbour's are answered", async () => {
    h.server.deploy('burst', {
      code: worker(`
        const settled = await Promise.allSettled(Array.from({ length: 40 }, () => env.DB.prepare(\`${SLOW}\`).first('n')));
        const refused = settled.filter((s) => s.status === 'rejected').map((s) => s.reason.message);
        return { answered: settled.filter((s) => s.status === 'fulfilled' && s.value === 200000).length, refused: refused.length, message: refused[0] };`),
      bindings: { DB: d1Binding('burst-db') },
    });
    const burst = h.server.request('burst', '/');
    let failed = 0;
    for (let i = 0; i < 3; i++) {
      const res = await h.server.request('neighbour', '/');
      if (res.status !== 200 || res.text !== JSON.stringify({ ok: [{ v: 'before' }] })) failed++;
    }
    expect(failed).toBe(0);
    const { ok } = JSON.parse((await burst).text);
    expect(ok.answered + ok.refused).toBe(40);
    expect(ok.refused).toBeGreaterThanOrEqual(1);
    expect(ok.answered).toBeGreaterThanOrEqual(10);
    expect(ok.message).toBe('D1_ERROR: D1 DB is overloaded. Too many queries from this worker are waiting (at most 10); await some before starting more');
  });

  it('ends a runaway query when its invocation ends at the wall limit, charges its time to the worker, and the database answers next', async () => {
    h.server.deploy('runaway', { code: worker(`return await env.DB.prepare('${RUNAWAY}').first();`), bindings: { DB: d1Binding('neighbour-db') }, limits: { wallMs: 2000 } });
    const res = await h.server.request('runaway', '/');
    expect(res.status).toBe(503);
    const record = records.find((r) => r.worker === 'runaway');
    expect(record?.outcome).toBe('exceededWall');
    // The executor's time on the ended query is metered to the worker (host work, not its CPU limit).
    expect(record!.hostWorkMs).toBeGreaterThan(100);
    // The query did not run on after its invocation: the same database, on the same (only)
    // process, answers well before the 120 s deadline would have freed it.
    const next = await h.server.request('neighbour', '/');
    expect(JSON.parse(next.text)).toEqual({ ok: [{ v: 'before' }] });
  });

  it("meters each query's executor CPU to the invocation, and usage shows it as host_work_ms", async () => {
    h.server.deploy('heavy', { code: worker(`return await env.DB.prepare(\`${SLOW.replace('200000', '2000000')}\`).first('n');`), bindings: { DB: d1Binding('heavy-db') } });
    h.server.deploy('light', { code: worker(`return await env.DB.prepare('SELECT 1 AS n').first('n');`), bindings: { DB: d1Binding('heavy-db') } });
    expect(JSON.parse((await h.server.request('heavy', '/')).text)).toEqual({ ok: 2000000 });
    expect(JSON.parse((await h.server.request('light', '/')).text)).toEqual({ ok: 1 });
    const heavy = records.find((r) => r.worker === 'heavy')!;
    const light = records.find((r) => r.worker === 'light')!;
    expect(heavy.hostWorkMs).toBeGreaterThan(light.hostWorkMs! + 50);
    // Not the worker's CPU: the query took longer than that on the executor.
    expect(heavy.cpuMs).toBeLessThan(heavy.hostWorkMs!);
    const row = emptyMinute('heavy', 0);
    addRecord(row, heavy);
    expect(summarize('heavy', [row], 0, 60_000).host_work_ms).toBeGreaterThan(50);
  });

  it('refuses a batch whose SQL and values are over 50 MB together (a string bound many times), and a dump() larger than an answer may be', async () => {
    const big = await h.run(`
      const s = 'x'.repeat(1_900_000);
      const one = env.DB.prepare('SELECT length(?) + length(?) + length(?)').bind(s, s, s);
      try { await env.DB.batch(Array.from({ length: 10 }, () => one)); return 'ran'; } catch (e) { return e.message; }`);
    expect(big.ok).toBe('D1_ERROR: batch too large: its SQL and bound values are more than 50000000 bytes together: SQLITE_TOOBIG');
    const dump = await h.run(`
      await env.DB.exec('CREATE TABLE blobs (b BLOB)');
      for (let i = 0; i < 6; i++) await env.DB.prepare('INSERT INTO blobs VALUES (?)').bind(new Uint8Array(16 * 1024)).run();
      try { await env.DB.dump(); return 'dumped'; } catch (e) { return e.message; }`, { DB: d1Binding('dump-db') });
    expect(dump.ok).toMatch(/^D1_ERROR: dump too large: the database is \d+ bytes, more than 65536; the operator can export it/);
    // The operator's export is not bounded by the guest's answer size.
    expect((await h.service.dump({ account: 'default', id: 'dump-db' })).byteLength).toBeGreaterThan(65536);
  });
});

describe("D1 executors as a pool: a tenant's runaway queries never hold every process", () => {
  let h: D1Harness;
  beforeAll(async () => {
    h = await startD1Harness({ processes: 2, timeoutMs: 120_000 });
    await h.run(`await env.DB.exec('CREATE TABLE kept (v TEXT)'); await env.DB.prepare("INSERT INTO kept VALUES ('before')").run(); return 1;`, { DB: d1Binding('calm-db') }, 'setup');
  });
  afterAll(() => h.close());

  it("a worker running two endless queries on two databases holds one process: a neighbour's queries are answered meanwhile, every one", async () => {
    h.server.deploy('hog', {
      code: worker(`return await Promise.all([env.A.prepare('${RUNAWAY}').first(), env.B.prepare('${RUNAWAY}').first()]);`),
      bindings: { A: d1Binding('hog-a'), B: d1Binding('hog-b') },
      limits: { wallMs: 2500 },
    });
    h.server.deploy('calm', { code: worker(`return (await env.DB.prepare('SELECT v FROM kept').all()).results;`), bindings: { DB: d1Binding('calm-db') } });
    let hogDone = false;
    const hog = h.server.request('hog', '/').then((res) => ((hogDone = true), res));
    let answered = 0;
    let failed = 0;
    for (let i = 0; i < 10; i++) {
      const res = await h.server.request('calm', '/');
      if (res.status === 200 && res.text === JSON.stringify({ ok: [{ v: 'before' }] })) answered++;
      else failed++;
    }
    const answeredWhileHogRan = !hogDone;
    expect({ answered, failed, answeredWhileHogRan }).toEqual({ answered: 10, failed: 0, answeredWhileHogRan: true });
    // The hog's invocation ends at its wall limit, and both its queries with it.
    expect((await hog).status).toBe(503);
    expect(JSON.parse((await h.server.request('calm', '/')).text)).toEqual({ ok: [{ v: 'before' }] });
  });
});

describe('the D1 query deadline is the operator\'s, within a ceiling', () => {
  it('refuses a deadline over 300 s, in the service and as `cinder serve --d1-query-ms`', async () => {
    expect(() => new D1Service({ dataDir: '/nonexistent', timeoutMs: 300_001 })).toThrow('a D1 query deadline is a whole number of ms from 1 to 300000 (got 300001)');
    const cli = fileURLToPath(new URL('../../dist/src/app/cli/index.js', import.meta.url));
    const out = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(process.execPath, [cli, 'serve', '--no-supervisor', '--d1-query-ms', '400000', '--port', '0', '--admin-port', '0'], { timeout: 20_000 }, (error, _stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr })),
    );
    expect(out.stderr).toContain('--d1-query-ms: a D1 query deadline is a whole number of ms from 1 to 300000');
    expect(out.code).not.toBe(0);
  });
});
