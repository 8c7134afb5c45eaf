// Durable Object storage runs in storage processes, not on the serving thread: a runaway SQL
// statement in one object leaves a neighbour worker answering, ends at the object's CPU limit with
// the usual limit error (charged to the object's invocation), and the object works again after it
// with its data intact. Order of events and counts, not timings.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as undiciRequest } from 'undici';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';
import type { InvocationRecord } from '../../src/runtime/invocation.js';

let cinder: TestCinder;

async function deploy(name: string, code: string, metadata: Record<string, unknown> = {}) {
  return cinder.admin('PUT', `/workers/${name}`, { body: multipart({ main_module: 'index.js', ...metadata }, { 'index.js': code }) });
}

const LEDGER = `
export class Ledger {
  constructor(ctx) { this.ctx = ctx; this.sql = ctx.storage.sql; this.sql.exec('CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY, amount INTEGER)'); }
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === '/add') {
      this.sql.exec('INSERT INTO entries (amount) VALUES (?)', 5);
      await this.ctx.storage.put('adds', ((await this.ctx.storage.get('adds')) ?? 0) + 1);
    }
    if (path === '/runaway') {
      // counts without end: only the limit stops it
      try { this.sql.exec('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c'); }
      catch (e) { return new Response('the object caught: ' + e.message); }
    }
    if (path === '/cross') {
      try { this.sql.exec('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000) SELECT count(*) FROM c a, c b'); }
      catch (e) { return new Response('the object caught: ' + e.message); }
    }
    const { n, total } = this.sql.exec('SELECT count(*) AS n, coalesce(sum(amount), 0) AS total FROM entries').one();
    return Response.json({ n, total, adds: (await this.ctx.storage.get('adds')) ?? 0 });
  }
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try { return await env.LEDGER.getByName(url.searchParams.get('name') ?? 'main').fetch('https://do' + url.pathname); }
    catch (e) { return new Response('caught: ' + e.message, { status: 502 }); }
  },
};`;

const CPU_LIMIT_MS = 1000;

beforeAll(async () => {
  cinder = await startCinder();
  const res = await deploy('ledger', LEDGER, {
    bindings: [{ type: 'durable_object_namespace', name: 'LEDGER', class_name: 'Ledger' }],
    migrations: { new_tag: 'v1', new_sqlite_classes: ['Ledger'] },
    limits: { cpu_ms: CPU_LIMIT_MS },
  });
  expect(res.status, res.text).toBe(201);
  expect((await deploy('neighbour', `export default { fetch() { return new Response('hello'); } }`)).status).toBe(201);
});

afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

async function get(host: string, path: string) {
  const res = await undiciRequest(`${cinder.server.url}${path}`, { headers: { host } });
  return { status: res.statusCode, text: await res.body.text() };
}

describe('Durable Object storage off the serving thread', () => {
  for (const [kind, path] of [['a recursive statement without end', '/runaway'], ['a cross join of 10^10 rows', '/cross']] as const) {
    it(`keeps a neighbour answering while ${kind} runs, ends it at the object's CPU limit, and keeps the object's data`, async () => {
      const name = kind.replace(/\W+/g, '-');
      for (let i = 0; i < 3; i++) expect((await get('ledger.example.com', `/add?name=${name}`)).status).toBe(200);
      const records: InvocationRecord[] = [];
      cinder.server.runtime.onInvocation((record) => records.push(record));

      const events: string[] = [];
      let runawayDone = false;
      const runaway = get('ledger.example.com', `${path}?name=${name}`).then((res) => {
        events.push('runaway answered');
        runawayDone = true;
        return res;
      });
      // The neighbour, one request after another, for as long as the runaway statement runs.
      let answered = 0;
      let failed = 0;
      while (!runawayDone) {
        const res = await get('neighbour.example.com', '/');
        if (res.status === 200 && res.text === 'hello') answered++;
        else failed++;
        if (!runawayDone) events.push('neighbour answered');
      }
      const out = await runaway;
      expect(failed).toBe(0);
      // Many neighbour answers came in before the statement was ended: it never held the serving thread.
      expect(events.indexOf('runaway answered')).toBeGreaterThanOrEqual(5);
      expect(answered).toBeGreaterThanOrEqual(5);
      // The usual limit error, and not something the object itself could catch and answer.
      expect(out.status).toBe(502);
      expect(out.text).toMatch(/^caught: env\.LEDGER: Durable Object Ledger .*CPU/);
      expect(out.text).not.toMatch(/the object caught/);
      // The storage process's CPU was charged to the object's invocation.
      const event = records.find((r) => r.worker === 'ledger' && r.kind === 'durable-object' && r.outcome === 'exceededCpu');
      expect(event, JSON.stringify(records)).toBeDefined();
      expect(event!.cpuMs).toBeGreaterThanOrEqual(CPU_LIMIT_MS * 0.9);

      // The object works again, with everything acknowledged before.
      const after = await get('ledger.example.com', `/add?name=${name}`);
      expect(after.status, after.text).toBe(200);
      expect(JSON.parse(after.text)).toEqual({ n: 4, total: 20, adds: 4 });
    });
  }

  it('charges the CPU a storage call took to the invocation that made it', async () => {
    const records: InvocationRecord[] = [];
    cinder.server.runtime.onInvocation((record) => records.push(record));
    const code = `
export class Heavy {
  constructor(ctx) { this.sql = ctx.storage.sql; }
  async fetch(request) {
    const n = Number(new URL(request.url).searchParams.get('n'));
    return Response.json(this.sql.exec('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ?) SELECT count(*) AS n FROM c', n).one());
  }
}
export default { fetch(request, env) { return env.HEAVY.getByName('one').fetch(request.url); } };`;
    const res = await deploy('heavy', code, { bindings: [{ type: 'durable_object_namespace', name: 'HEAVY', class_name: 'Heavy' }], migrations: { new_tag: 'v1', new_sqlite_classes: ['Heavy'] }, limits: { cpu_ms: 1000 } });
    expect(res.status, res.text).toBe(201);
    const light = await get('heavy.example.com', '/?n=1');
    expect(JSON.parse(light.text)).toEqual({ n: 1 });
    const heavy = await get('heavy.example.com', '/?n=3000000');
    expect(JSON.parse(heavy.text)).toEqual({ n: 3000000 });
    const events = records.filter((r) => r.worker === 'heavy' && r.kind === 'durable-object');
    expect(events).toHaveLength(2);
    // Three million rows take far more CPU than one: the storage process's share was charged.
    expect(events[1].cpuMs).toBeGreaterThan(events[0].cpuMs + 20);
  });
});
