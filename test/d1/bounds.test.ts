// What a worker can make D1 do is bounded: a statement that would run forever is ended (its
// executor process killed) while other requests go on being served, a database cannot outgrow
// its size, an answer cannot outgrow its size, and an invocation has a query allowance.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startD1Harness, type D1Harness } from './fixtures.js';

describe('D1 bounds', () => {
  let h: D1Harness;
  beforeAll(async () => {
    h = await startD1Harness({ timeoutMs: 1500, maxDatabaseBytes: 256 * 1024, maxResultBytes: 64 * 1024 });
    h.server.deploy('hello', `export default { fetch() { return new Response('hello'); } };`);
  });
  afterAll(() => h.close());

  it('ends a runaway statement at the deadline, serves others meanwhile, and recovers', async () => {
    await h.run(`await env.DB.exec('CREATE TABLE kept (v TEXT)'); await env.DB.prepare("INSERT INTO kept VALUES ('before')").run();`);
    const order: string[] = [];
    const runaway = h
      .run(`return await env.DB.prepare('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c').first();`)
      .then((result) => {
        order.push('runaway');
        return result;
      });
    const hello = await h.server.request('hello', '/');
    order.push('hello');
    expect(hello.text).toBe('hello');
    const result = await runaway;
    expect(order).toEqual(['hello', 'runaway']);
    expect(result.error!.message).toMatch(/^D1_ERROR: D1 DB's query exceeded the time limit of 1500 ms/);
    // A new executor answers, with what was committed before.
    const after = await h.run(`return (await env.DB.prepare('SELECT v FROM kept').all()).results;`);
    expect(after.ok).toEqual([{ v: 'before' }]);
  });

  it('refuses writes past the database size limit with SQLITE_FULL, keeping what fit', async () => {
    const { ok } = await h.run(`
      await env.DB.exec('CREATE TABLE blobs (b BLOB)');
      let stored = 0;
      for (let i = 0; i < 100; i++) {
        try { await env.DB.prepare('INSERT INTO blobs VALUES (?)').bind(new Uint8Array(16 * 1024)).run(); stored++; }
        catch (e) { return { stored, message: e.message }; }
      }
      return { stored, message: null };`);
    expect(ok.message).toBe('D1_ERROR: database or disk is full: SQLITE_FULL');
    expect(ok.stored).toBeGreaterThan(5);
    expect(ok.stored).toBeLessThan(16);
    const count = await h.run(`return await env.DB.prepare('SELECT count(*) AS n FROM blobs').first('n');`);
    expect(count.ok).toBe(ok.stored);
  });

  it('refuses an answer over the result size limit', async () => {
    const { error } = await h.run(`return (await env.DB.prepare('SELECT b FROM blobs').all()).results.length;`);
    expect(error!.message).toBe('D1_ERROR: result too large: more than 65536 bytes; select fewer rows or columns (LIMIT)');
  });

  it('allows 1,000 queries per invocation, counting each statement of a batch', async () => {
    const { ok } = await h.run(`
      const one = env.DB.prepare('SELECT 1');
      await env.DB.batch(Array.from({ length: 990 }, () => one));
      let ran = 990;
      try { for (;;) { await one.first(); ran++; } } catch (e) { return { ran, message: e.message }; }`);
    expect(ok).toEqual({ ran: 1000, message: 'D1_ERROR: Too many API requests by single worker invocation (more than 1000 D1 queries).' });
  });
});
