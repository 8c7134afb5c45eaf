// Durable Objects through a real `cinder serve` (in-process, SQLite files in a temp directory):
// ids, stubs (fetch and RPC), one instance per id under concurrency, the key-value and SQL
// storage APIs, transactions, eviction and re-creation, and the deploy checks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';

let cinder: TestCinder;

async function deploy(name: string, code: string, metadata: Record<string, unknown> = {}) {
  return cinder.admin('PUT', `/workers/${name}`, { body: multipart({ main_module: 'index.js', ...metadata }, { 'index.js': code }) });
}

const COUNTER = `
export class Counter {
  constructor(state, env) { this.state = state; this.constructed = (globalThis.constructions = (globalThis.constructions ?? 0) + 1); }
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/inc') {
      const value = ((await this.state.storage.get('count')) ?? 0) + 1;
      await this.state.storage.put('count', value);
      return new Response(String(value));
    }
    if (url.pathname === '/get') return new Response(String((await this.state.storage.get('count')) ?? 0));
    if (url.pathname === '/constructions') return new Response(String(globalThis.constructions));
    if (url.pathname === '/id') return new Response(JSON.stringify({ id: this.state.id.toString(), name: this.state.id.name ?? null }));
    return new Response('not found', { status: 404 });
  }
  async add(a, b) { return { sum: a + b, when: new Date(0), list: new Map([['k', [1, 2]]]) }; }
  async fail() { throw new RangeError('object said no'); }
}
export class Store {
  constructor(ctx, env) { this.ctx = ctx; }
  async fetch(request) {
    const url = new URL(request.url);
    const s = this.ctx.storage;
    try {
      switch (url.pathname) {
        case '/kv': {
          await s.put({ a: 1, b: 'two', c: { three: [3] }, 'd/1': 4, 'd/2': 5, 'd/3': 6, e: 7 });
          const many = await s.get(['a', 'b', 'missing', 'c']);
          const all = [...(await s.list())].map(([k]) => k);
          const prefixed = [...(await s.list({ prefix: 'd/' }))];
          const reversed = [...(await s.list({ reverse: true, limit: 2 }))].map(([k]) => k);
          const range = [...(await s.list({ start: 'b', end: 'd/2' }))].map(([k]) => k);
          const after = [...(await s.list({ startAfter: 'd/2', limit: 2 }))].map(([k]) => k);
          const deletedOne = await s.delete('a');
          const deletedMissing = await s.delete('nope');
          const deletedMany = await s.delete(['b', 'c', 'nope']);
          return Response.json({ many: [...many], all, prefixed, reversed, range, after, deletedOne, deletedMissing, deletedMany, left: [...(await s.list())].map(([k]) => k) });
        }
        case '/txn': {
          await s.put('balance', 100);
          let error = null;
          try {
            await s.transaction(async (txn) => {
              await txn.put('balance', 0);
              await txn.put('other', 'x');
              throw new Error('abort the transfer');
            });
          } catch (e) { error = e.message; }
          const afterThrow = { balance: await s.get('balance'), other: await s.get('other') ?? null };
          await s.transaction(async (txn) => { await txn.put('balance', 50); txn.rollback(); });
          const afterRollback = await s.get('balance');
          const committed = await s.transaction(async (txn) => { await txn.put('balance', 75); return 'ok'; });
          return Response.json({ error, afterThrow, afterRollback, committed, final: await s.get('balance') });
        }
        case '/limits': {
          const out = {};
          try { await s.put('k'.repeat(2049), 1); } catch (e) { out.key = e.name + ': ' + e.message; }
          try { await s.put('big', 'x'.repeat(200 * 1024)); } catch (e) { out.value = e.name + ': ' + e.message; }
          try { await s.get(Array.from({ length: 129 }, (_, i) => 'k' + i)); } catch (e) { out.batch = e.name + ': ' + e.message; }
          try { s.sql.exec('SELECT 1'); } catch (e) { out.sql = e.message; }
          return Response.json(out);
        }
      }
    } catch (e) { return new Response(e.stack, { status: 500 }); }
    return new Response('not found', { status: 404 });
  }
}
export class Sql {
  constructor(ctx) { this.ctx = ctx; this.sql = ctx.storage.sql; }
  async fetch(request) {
    const url = new URL(request.url);
    const sql = this.sql;
    const out = {};
    sql.exec('CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, data BLOB)');
    const ins = sql.exec('INSERT INTO items (name, data) VALUES (?, ?), (?, ?), (?, ?)', 'a', new Uint8Array([1, 2]), 'b', null, 'c', null);
    out.inserted = ins.rowsWritten;
    const cursor = sql.exec('SELECT id, name FROM items ORDER BY id');
    out.columns = cursor.columnNames;
    out.first = cursor.next().value;
    out.rest = cursor.toArray();
    out.raw = [...sql.exec('SELECT name FROM items ORDER BY id DESC').raw()];
    out.one = sql.exec('SELECT count(*) AS n FROM items').one();
    out.iterated = [];
    for (const row of sql.exec('SELECT name FROM items WHERE name > ?', 'a')) out.iterated.push(row.name);
    out.blob = [...new Uint8Array(sql.exec('SELECT data FROM items WHERE name = ?', 'a').one().data)];
    try { sql.exec('SELECT * FROM items WHERE id = 999').one(); } catch (e) { out.oneError = e.message; }
    for (const [key, query] of [['attach', "ATTACH DATABASE '/tmp/x.db' AS x"], ['pragma', 'PRAGMA journal_mode = DELETE'], ['explainPragma', 'EXPLAIN PRAGMA synchronous = OFF'], ['explainPlanPragma', 'explain /* x */ query plan PRAGMA cache_size = -4000000'], ['begin', 'BEGIN'], ['internal', 'SELECT * FROM _cf_KV'], ['syntax', 'SELEC 1']]) {
      try { sql.exec(query); out[key] = 'allowed'; } catch (e) { out[key] = e.message; }
    }
    try {
      this.ctx.storage.transactionSync(() => { sql.exec("INSERT INTO items (name) VALUES ('rolled back')"); throw new Error('no'); });
    } catch (e) { out.txnError = e.message; }
    out.afterTxn = sql.exec("SELECT count(*) AS n FROM items WHERE name = 'rolled back'").one().n;
    out.size = sql.databaseSize > 0;
    await this.ctx.storage.put('kv-too', 1);
    out.kv = await this.ctx.storage.get('kv-too');
    return Response.json(out);
  }
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const name = url.searchParams.get('name') ?? 'main';
    const ns = url.searchParams.get('ns') ?? 'COUNTER';
    if (url.pathname === '/ids') {
      const a = env.COUNTER.idFromName('x');
      const b = env.COUNTER.idFromName('x');
      const c = env.COUNTER.idFromName('y');
      const u = env.COUNTER.newUniqueId();
      const parsed = env.COUNTER.idFromString(a.toString());
      let bad = null, foreign = null;
      try { env.COUNTER.idFromString('zz'); } catch (e) { bad = e.name + ': ' + e.message; }
      try { env.STORE.idFromString(a.toString()); } catch (e) { foreign = e.name + ': ' + e.message; }
      return Response.json({ a: a.toString(), same: a.equals(b), different: !a.equals(c), name: a.name, unique: u.toString(), uniqueName: u.name ?? null, parsedEquals: parsed.equals(a), bad, foreign });
    }
    if (url.pathname === '/rpc') {
      const stub = env.COUNTER.getByName(name);
      const result = await stub.add(2, 3);
      let error = null;
      try { await stub.fail(); } catch (e) { error = e.name + ': ' + e.message; }
      let missing = null;
      try { await stub.nope(); } catch (e) { missing = e.message; }
      return Response.json({ sum: result.sum, when: result.when instanceof Date, map: result.list instanceof Map ? result.list.get('k') : null, error, missing });
    }
    const stub = env[ns].get(env[ns].idFromName(name));
    return stub.fetch('https://do' + url.pathname, { method: request.method });
  },
};
`;

const bindings = [
  { type: 'durable_object_namespace', name: 'COUNTER', class_name: 'Counter' },
  { type: 'durable_object_namespace', name: 'STORE', class_name: 'Store' },
  { type: 'durable_object_namespace', name: 'SQL', class_name: 'Sql' },
];
const migrations = { new_tag: 'v1', new_classes: ['Counter', 'Store'], new_sqlite_classes: ['Sql'] };

beforeAll(async () => {
  cinder = await startCinder({ durableObjects: { idleMs: 400 } });
  // (its first object events use up to ~16 ms of CPU here, of the 50 ms default: room for CI)
  const res = await deploy('app', COUNTER, { bindings, migrations, limits: { cpu_ms: 1000 } });
  expect(res.status, res.text).toBe(201);
});

afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('Durable Objects', () => {
  it('makes ids as Cloudflare does: deterministic by name, 64 hex, sealed to their namespace', async () => {
    const res = await cinder.get('app.example.com', '/ids');
    expect(res.status, res.text).toBe(200);
    const ids = JSON.parse(res.text);
    expect(ids.a).toMatch(/^[0-9a-f]{64}$/);
    expect(ids.unique).toMatch(/^[0-9a-f]{64}$/);
    expect(ids.unique).not.toBe(ids.a);
    expect(ids).toMatchObject({ same: true, different: true, name: 'x', uniqueName: null, parsedEquals: true });
    expect(ids.bad).toMatch(/^TypeError: Invalid Durable Object ID/);
    expect(ids.foreign).toMatch(/not valid for this namespace/);
    // Same name, same id, across requests.
    expect(JSON.parse((await cinder.get('app.example.com', '/ids')).text).a).toBe(ids.a);
  });

  it('never loses an increment under 50 concurrent requests to one counter', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, () => cinder.get('app.example.com', '/inc?name=race')));
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
    // Every request saw a different value: one instance, its events gated.
    expect(new Set(answers.map((a) => a.text)).size).toBe(50);
    expect((await cinder.get('app.example.com', '/get?name=race')).text).toBe('50');
  });

  it('gives the object its id and name, and keeps objects apart by name', async () => {
    const one = JSON.parse((await cinder.get('app.example.com', '/id?name=alpha')).text);
    const two = JSON.parse((await cinder.get('app.example.com', '/id?name=beta')).text);
    expect(one.id).not.toBe(two.id);
    expect(one.name).toBe('alpha');
    await cinder.get('app.example.com', '/inc?name=alpha');
    expect((await cinder.get('app.example.com', '/get?name=beta')).text).toBe('0');
  });

  it('calls RPC methods with structured-cloned arguments and results, and rethrows their errors', async () => {
    const res = await cinder.get('app.example.com', '/rpc?name=rpc');
    expect(res.status, res.text).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ sum: 5, when: true, map: [1, 2], error: 'RangeError: object said no', missing: 'The RPC receiver does not implement the method "nope".' });
  });

  it('stores, reads, lists (ordering and ranges) and deletes key-value entries', async () => {
    const res = await cinder.get('app.example.com', '/kv?ns=STORE&name=kv');
    expect(res.status, res.text).toBe(200);
    expect(JSON.parse(res.text)).toEqual({
      many: [['a', 1], ['b', 'two'], ['c', { three: [3] }]],
      all: ['a', 'b', 'c', 'd/1', 'd/2', 'd/3', 'e'],
      prefixed: [['d/1', 4], ['d/2', 5], ['d/3', 6]],
      reversed: ['e', 'd/3'],
      range: ['b', 'c', 'd/1'],
      after: ['d/3', 'e'],
      deletedOne: true,
      deletedMissing: false,
      deletedMany: 2,
      left: ['d/1', 'd/2', 'd/3', 'e'],
    });
  });

  it('rolls a transaction back when its closure throws or calls rollback()', async () => {
    const res = await cinder.get('app.example.com', '/txn?ns=STORE&name=txn');
    expect(res.status, res.text).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ error: 'abort the transfer', afterThrow: { balance: 100, other: null }, afterRollback: 100, committed: 'ok', final: 75 });
  });

  it("applies Cloudflare's storage limits, and keeps SQL to SQLite-backed classes", async () => {
    const res = await cinder.get('app.example.com', '/limits?ns=STORE&name=limits');
    expect(res.status, res.text + JSON.stringify(cinder.logs.filter((l) => l.level >= 40).slice(-3))).toBe(200);
    const out = JSON.parse(res.text);
    expect(out.key).toMatch(/RangeError: Keys cannot be larger than 2048 bytes/);
    expect(out.value).toMatch(/RangeError: Values cannot be larger than 131072 bytes/);
    expect(out.batch).toBe('RangeError: Maximum number of key value pairs is 128. 129 pairs were provided.');
    expect(out.sql).toMatch(/^This Durable Object is not backed by SQLite storage, so the SQL API is not available\..*new_sqlite_classes/);
  });

  it('runs SQL through ctx.storage.sql.exec with cursors, and refuses what reaches outside the object', async () => {
    const res = await cinder.get('app.example.com', '/?ns=SQL&name=sql');
    expect(res.status, res.text).toBe(200);
    const out = JSON.parse(res.text);
    expect(out).toMatchObject({
      inserted: 3,
      columns: ['id', 'name'],
      first: { id: 1, name: 'a' },
      rest: [{ id: 2, name: 'b' }, { id: 3, name: 'c' }],
      raw: [['c'], ['b'], ['a']],
      one: { n: 3 },
      iterated: ['b', 'c'],
      blob: [1, 2],
      oneError: 'Expected exactly one result from SQL query, but got no results.',
      txnError: 'no',
      afterTxn: 0,
      size: true,
      kv: 1,
    });
    expect(out.attach).toBe('not authorized: SQLITE_AUTH');
    expect(out.pragma).toBe('not authorized: SQLITE_AUTH');
    // SQLite applies PRAGMAs while it prepares a statement: EXPLAIN does not make one harmless
    expect(out.explainPragma).toBe('not authorized: SQLITE_AUTH');
    expect(out.explainPlanPragma).toBe('not authorized: SQLITE_AUTH');
    expect(out.begin).toMatch(/^To execute a transaction, please use the state\.storage\.transaction\(\) or state\.storage\.transactionSync\(\) APIs/);
    expect(out.internal).toBe('not authorized: SQLITE_AUTH');
    expect(out.syntax).toBe('near "SELEC": syntax error: SQLITE_ERROR');
  });

  it('keeps one SQLite file per object under the data directory', () => {
    const root = join(cinder.dataDir, 'durable-objects');
    expect(existsSync(join(root, 'index.sqlite'))).toBe(true);
    const files = readdirSync(root, { recursive: true }).map(String).filter((f) => f.endsWith('.sqlite') && !f.startsWith('index'));
    expect(files.length).toBeGreaterThanOrEqual(5);
    expect(files.every((f) => /^[0-9a-f]{32}\/[0-9a-f]{64}\.sqlite$/.test(f))).toBe(true);
  });

  it('ends an event over the CPU limit, resets only that object, and keeps its storage', async () => {
    const code = `
export class Spinner {
  constructor(ctx) { this.ctx = ctx; }
  async fetch(request) {
    if (new URL(request.url).pathname === '/spin') { await this.ctx.storage.put('before', 'kept'); for (;;) {} }
    return new Response(String(await this.ctx.storage.get('before')));
  }
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try { return await env.SPIN.getByName(url.searchParams.get('name')).fetch('https://do' + url.pathname); }
    catch (e) { return new Response('caught: ' + e.message, { status: 502 }); }
  },
};`;
    const res = await deploy('spinner', code, { bindings: [{ type: 'durable_object_namespace', name: 'SPIN', class_name: 'Spinner' }], migrations: { new_tag: 'v1', new_classes: ['Spinner'] }, limits: { cpu_ms: 50 } });
    expect(res.status, res.text).toBe(201);
    expect((await cinder.get('spinner.example.com', '/get?name=calm')).text).toBe('undefined');
    const spun = await cinder.get('spinner.example.com', '/spin?name=busy');
    expect(spun.status).toBe(502);
    expect(spun.text).toMatch(/^caught: env\.SPIN: Durable Object Spinner .*CPU/);
    // Its write before the loop stayed; the other object was never disturbed.
    expect((await cinder.get('spinner.example.com', '/get?name=busy')).text).toBe('kept');
    expect((await cinder.get('spinner.example.com', '/get?name=calm')).text).toBe('undefined');
  });

  it('meters each object event as an invocation of its own', async () => {
    const records: { worker: string; kind: string; trigger?: unknown }[] = [];
    cinder.server.runtime.onInvocation((record) => records.push(record));
    expect((await cinder.get('app.example.com', '/rpc?name=metered')).status).toBe(200);
    const events = records.filter((r) => r.kind === 'durable-object');
    // add(), fail(), nope(): three RPC events, besides the worker's own fetch.
    expect(events.map((r) => (r.trigger as { url: string }).url).sort()).toEqual(['durable-object://Counter/add', 'durable-object://Counter/fail', 'durable-object://Counter/nope']);
    expect(records.filter((r) => r.kind === 'fetch' && r.worker === 'app')).toHaveLength(1);
  });

  it('evicts an idle object and re-creates it from storage', async () => {
    const objects = cinder.server.runtime.objects();
    expect((await cinder.get('app.example.com', '/inc?name=evict')).text).toBe('1');
    expect((await cinder.get('app.example.com', '/constructions?name=evict')).text).toBe('1');
    // Every object of this file goes idle (400 ms here): none is left live.
    await waitFor(() => objects.liveCount === 0);
    // A new isolate: the constructor ran again (its global counter starts over), the count stayed.
    expect((await cinder.get('app.example.com', '/inc?name=evict')).text).toBe('2');
    expect((await cinder.get('app.example.com', '/constructions?name=evict')).text).toBe('1');
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Durable Objects extending cloudflare:workers DurableObject', () => {
  it('gives this.ctx and this.env, and serves fetch and RPC', async () => {
    const code = `
import { DurableObject } from 'cloudflare:workers';
export class Room extends DurableObject {
  async join(who) {
    const members = (await this.ctx.storage.get('members')) ?? [];
    members.push(who);
    await this.ctx.storage.put('members', members);
    return { members, greeting: this.env.GREETING, named: this.ctx.id.name };
  }
  async fetch() { return Response.json(await this.ctx.storage.get('members')); }
}
export default {
  async fetch(request, env) {
    const room = env.ROOM.getByName('lobby');
    const first = await room.join('ada');
    const second = await room.join('bob');
    return Response.json({ first, second, viaFetch: await (await room.fetch('https://room/')).json() });
  },
};`;
    const res = await deploy('rooms-base', code, {
      bindings: [{ type: 'durable_object_namespace', name: 'ROOM', class_name: 'Room' }, { type: 'plain_text', name: 'GREETING', text: 'hi' }],
      migrations: { new_tag: 'v1', new_sqlite_classes: ['Room'] },
    });
    expect(res.status, res.text).toBe(201);
    const out = await cinder.get('rooms-base.example.com', '/');
    expect(out.status, out.text).toBe(200);
    expect(JSON.parse(out.text)).toEqual({
      first: { members: ['ada'], greeting: 'hi', named: 'lobby' },
      second: { members: ['ada', 'bob'], greeting: 'hi', named: 'lobby' },
      viaFetch: ['ada', 'bob'],
    });
  });
});

describe('Durable Objects, bounded', () => {
  it('refuses a new object when the live-object cap is reached and every live one is busy', async () => {
    const small = await startCinder({ durableObjects: { maxLive: 2, maxLivePerAccount: 2 } });
    try {
      const code = `
export class Slow {
  async fetch(request) { await new Promise((r) => setTimeout(r, Number(new URL(request.url).searchParams.get('ms')))); return new Response('done'); }
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try { return await env.SLOW.getByName(url.searchParams.get('name')).fetch(request); }
    catch (e) { return new Response(e.message, { status: 503 }); }
  },
};`;
      const res = await small.admin('PUT', '/workers/slow', { body: multipart({ main_module: 'index.js', bindings: [{ type: 'durable_object_namespace', name: 'SLOW', class_name: 'Slow' }], migrations: { new_tag: 'v1', new_classes: ['Slow'] } }, { 'index.js': code }) });
      expect(res.status, res.text).toBe(201);
      const busy = [small.get('slow.example.com', '/?name=a&ms=1500'), small.get('slow.example.com', '/?name=b&ms=1500')];
      await new Promise((r) => setTimeout(r, 500));
      const third = await small.get('slow.example.com', '/?name=c&ms=0');
      expect(third.status).toBe(503);
      expect(third.text).toMatch(/maximum of 2 live Durable Objects, all busy/);
      expect((await Promise.all(busy)).map((r) => r.text)).toEqual(['done', 'done']);
      // Now idle: the oldest is evicted to make room.
      expect((await small.get('slow.example.com', '/?name=c&ms=0')).text).toBe('done');
      expect(small.server.runtime.objects().liveCount).toBe(2);
    } finally {
      await small.close({ cleanup: true });
    }
  });
});
