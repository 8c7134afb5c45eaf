// Which databases a worker reaches: only its account's, and only through its own bindings. Two
// accounts binding the same database id get two databases; a worker without the binding, or a
// forged op naming another binding, reaches nothing; the admin API is scoped the same way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { twoTenants, type Tenant } from '../security/tenants.js';
import type { TestCinder } from '../control/helpers.js';
import { d1ServeExtension } from '../../src/app/d1.js';
import { kvServeExtension } from '../../src/app/kv.js';
import { D1_OPS } from '../../protocol/wall.js';
import { d1Worker } from './fixtures.js';

let cinder: TestCinder;
let good: Tenant;
let evil: Tenant;
const binding = (id: string) => ({ bindings: [{ type: 'd1', name: 'DB', id }] });

beforeAll(async () => {
  ({ cinder, good, evil } = await twoTenants({ extensions: [kvServeExtension(), d1ServeExtension()] }));
});
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

async function run(worker: string): Promise<any> {
  const response = await cinder.get(`${worker}.example.com`);
  expect(response.status, response.text).toBe(200);
  return JSON.parse(response.text);
}

describe('D1 between accounts', () => {
  it('gives two accounts binding the same id two databases', async () => {
    const writer = d1Worker(`await env.DB.exec('CREATE TABLE IF NOT EXISTS secrets (v TEXT)'); await env.DB.prepare('INSERT INTO secrets VALUES (?)').bind('good-secret').run(); return 'stored';`);
    expect((await good.deploy('vault', writer, binding('shared-id'))).status).toBe(201);
    expect(await run('vault')).toEqual({ ok: 'stored' });

    const thief = d1Worker(`return await env.DB.prepare('SELECT v FROM secrets').all();`);
    expect((await evil.deploy('thief', thief, binding('shared-id'))).status).toBe(201);
    expect((await run('thief')).error.message).toBe('D1_ERROR: no such table: secrets: SQLITE_ERROR');
  });

  it('scopes the admin API: an account token sees and changes only its own databases', async () => {
    const mine = await good.admin('POST', '/d1/shared-id/query', { json: { sql: 'SELECT v FROM secrets' } });
    expect(mine.status, mine.text).toBe(200);
    expect(mine.body.results[0].results).toEqual([{ v: 'good-secret' }]);
    expect((await good.admin('GET', '/d1')).body.databases.map((d: { id: string }) => d.id)).toEqual(['shared-id']);

    const theirs = await evil.admin('POST', '/d1/shared-id/query', { json: { sql: 'SELECT v FROM secrets' } });
    expect(theirs.status).toBe(400);
    expect(theirs.body.error).toBe('D1_ERROR: no such table: secrets: SQLITE_ERROR');
    // ?account= is the operator's alone
    const asked = await evil.admin('POST', `/d1/shared-id/query?account=${good.id}`, { json: { sql: 'SELECT v FROM secrets' } });
    expect(asked.body.error).toBe('D1_ERROR: no such table: secrets: SQLITE_ERROR');
    expect((await evil.admin('DELETE', '/d1/shared-id')).status).toBe(200);
    expect((await good.admin('POST', '/d1/shared-id/query', { json: { sql: 'SELECT count(*) AS n FROM secrets' } })).body.results[0].results).toEqual([{ n: 1 }]);
    // The operator reaches any account's database by naming it.
    const operator = await cinder.admin('POST', `/d1/shared-id/query?account=${good.id}`, { json: { sql: 'SELECT v FROM secrets' } });
    expect(operator.body.results[0].results).toEqual([{ v: 'good-secret' }]);
  });

  it('refuses, on the host, binding names the worker does not have or that are not D1', async () => {
    expect((await good.deploy('forger', d1Worker('return 1;'), { bindings: [{ type: 'd1', name: 'DB', id: 'mine' }, { type: 'plain_text', name: 'TEXT', text: 'x' }] })).status).toBe(201);
    const def = cinder.server.runtime.definition('forger')!;
    expect(def.bindings.DB).toEqual({ type: 'd1', database_id: 'mine', account: good.id });
    const asForger = { worker: def, invocation: undefined, binding: (name: string) => def.bindings[name] };
    const query = cinder.server.runtime.ops.get(D1_OPS.query)!;
    for (const name of ['TEXT', 'OTHER', '__proto__', 'constructor', 42]) {
      await expect(query(asForger as never, [name, [{ sql: 'SELECT 1', params: [] }]])).rejects.toThrow(TypeError);
    }
    await expect(query(asForger as never, ['DB', [{ sql: 'SELECT 1 AS one', params: [] }]])).resolves.toMatchObject({ results: [{ columns: ['one'], rows: [[1]] }] });
    await expect(query(asForger as never, ['DB', [{ sql: 'SELECT ?', params: [{ evil: true }] }]])).rejects.toThrow(/bound value/);
  });

  it('refuses a malformed binding at upload, naming it', async () => {
    const bad = await good.deploy('bad', d1Worker('return 1;'), { bindings: [{ type: 'd1', name: 'DB', id: '../../etc/passwd' }] });
    expect(bad.status).toBe(400);
    expect(bad.body.errors?.[0]?.message ?? bad.body.error ?? bad.text).toMatch(/metadata\.bindings\[0\]\.id: a D1 database id is/);
  });
});
