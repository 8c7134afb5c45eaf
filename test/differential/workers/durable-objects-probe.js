// Durable Objects probe for the differential harness: the same requests to Cinder and workerd,
// each answering with what it saw, as JSON. Plain classes (no cloudflare:workers import) and
// stub.fetch() only, so both runtimes run it unchanged. Ids differ by runtime (their secrets), so
// only their shape and equalities are reported.
const show = (f) => {
  try {
    const value = f();
    return value && typeof value.then === 'function' ? value.then((v) => ({ ok: v }), (e) => ({ error: `${e.name}: ${e.message}` })) : { ok: value };
  } catch (e) {
    return { error: `${e.name}: ${e.message}` };
  }
};

export class Kv {
  constructor(state, env) {
    this.state = state;
    this.storage = state.storage;
  }
  async fetch(request) {
    const s = this.storage;
    const path = new URL(request.url).pathname;
    if (path === '/kv') {
      await s.put({ b: 2, a: 1, 'c/1': 'x', 'c/2': 'y', 'c/3': 'z', d: { nested: [1, 'two', null] }, e: new Date(0), '\u00e9': 'accent', Z: 'upper' });
      return Response.json({
        one: await s.get('a'),
        missing: (await s.get('nope')) ?? 'undefined',
        many: [...(await s.get(['a', 'nope', 'd']))],
        date: (await s.get('e')) instanceof Date,
        all: [...(await s.list())].map(([k]) => k),
        prefix: [...(await s.list({ prefix: 'c/' }))],
        reverse: [...(await s.list({ reverse: true, limit: 3 }))].map(([k]) => k),
        range: [...(await s.list({ start: 'a', end: 'c/2' }))].map(([k]) => k),
        startAfter: [...(await s.list({ startAfter: 'c/1', limit: 2 }))].map(([k]) => k),
        deleteOne: await s.delete('a'),
        deleteMissing: await s.delete('a'),
        deleteMany: await s.delete(['b', 'c/1', 'nope']),
        after: [...(await s.list())].map(([k]) => k),
      });
    }
    if (path === '/txn') {
      await s.put('n', 1);
      const threw = await show(() => s.transaction(async (txn) => { await txn.put('n', 2); await txn.put('m', 3); throw new Error('undo'); }));
      const afterThrow = [await s.get('n'), (await s.get('m')) ?? 'undefined'];
      await s.transaction(async (txn) => { await txn.put('n', 4); txn.rollback(); });
      const afterRollback = await s.get('n');
      const value = await s.transaction(async (txn) => { await txn.put('n', 5); return 'done'; });
      return Response.json({ threw, afterThrow, afterRollback, value, final: await s.get('n') });
    }
    if (path === '/errors') {
      return Response.json({
        undefinedValue: await show(() => s.put('k', undefined)),
        function: await show(() => s.put('k', () => 1)),
        tooManyKeys: await show(() => s.get(Array.from({ length: 129 }, (_, i) => `k${i}`))),
        sqlOnKv: show(() => typeof s.sql),
      });
    }
    if (path === '/alarm') {
      const before = await s.getAlarm();
      const setResult = await show(() => s.setAlarm(Date.now() + 3_600_000));
      const set = (await s.getAlarm()) !== null;
      await s.deleteAlarm();
      return Response.json({ before, setResult, set, after: await s.getAlarm() });
    }
    if (path === '/count') {
      const value = ((await s.get('count')) ?? 0) + 1;
      await s.put('count', value);
      return new Response(String(value));
    }
    if (path === '/id') return Response.json({ length: this.state.id.toString().length, name: this.state.id.name ?? null });
    return new Response('not found', { status: 404 });
  }
}

export class Sql {
  constructor(state) {
    this.state = state;
    this.sql = state.storage.sql;
  }
  async fetch() {
    const sql = this.sql;
    const out = {};
    const step = (name, f) => (out[name] = show(f));
    step('create', () => sql.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB)').rowsWritten);
    step('rowsWritten', () => sql.exec('INSERT INTO t (name, score, data) VALUES (?, ?, ?), (?, ?, ?)', 'a', 1.5, new Uint8Array([1, 2, 3]), 'b', null, null).rowsWritten);
    step('cursor', () => {
      const cursor = sql.exec('SELECT id, name, score FROM t ORDER BY id');
      const first = cursor.next();
      return { columnNames: cursor.columnNames, first, rest: cursor.toArray(), exhausted: cursor.next(), rowsRead: cursor.rowsRead };
    });
    step('raw', () => [...sql.exec('SELECT name FROM t ORDER BY id DESC').raw()]);
    step('iterated', () => [...sql.exec('SELECT id FROM t')].map((r) => r.id));
    step('one', () => sql.exec('SELECT count(*) AS n FROM t').one());
    step('blob', () => [...new Uint8Array(sql.exec('SELECT data FROM t WHERE id = 1').one().data)]);
    step('blobType', () => Object.prototype.toString.call(sql.exec('SELECT data FROM t WHERE id = 1').one().data));
    step('noRow', () => sql.exec('SELECT * FROM t WHERE id = 99').one());
    step('twoRows', () => sql.exec('SELECT * FROM t').one());
    step('multi', () => sql.exec("INSERT INTO t (name) VALUES ('m'); SELECT name FROM t WHERE name = ?", 'm').toArray());
    step('txnSync', () => this.state.storage.transactionSync(() => { sql.exec("INSERT INTO t (name) VALUES ('gone')"); throw new Error('rolled'); }));
    step('afterTxn', () => sql.exec("SELECT count(*) AS n FROM t WHERE name = 'gone'").one().n);
    step('sizePositive', () => sql.databaseSize > 0);
    step('attach', () => sql.exec("ATTACH DATABASE 'x.db' AS x"));
    step('begin', () => sql.exec('BEGIN TRANSACTION'));
    step('pragma', () => sql.exec('PRAGMA journal_mode = DELETE').toArray());
    step('tableList', () => sql.exec('PRAGMA table_list').toArray().map((r) => r.name));
    step('cfTable', () => sql.exec('SELECT * FROM _cf_KV').toArray());
    step('syntax', () => sql.exec('SELEC 1'));
    step('boolBinding', () => sql.exec('SELECT ? AS b', true).one());
    step('bigint', () => sql.exec('SELECT 9007199254740993 AS n').one());
    return Response.json(out);
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/ids') {
      const a = env.KV.idFromName('alpha');
      return Response.json({
        hex: /^[0-9a-f]{64}$/.test(a.toString()),
        sameName: a.equals(env.KV.idFromName('alpha')),
        otherName: a.equals(env.KV.idFromName('beta')),
        name: a.name,
        uniqueName: env.KV.newUniqueId().name ?? null,
        roundTrip: env.KV.idFromString(a.toString()).equals(a),
        bad: show(() => env.KV.idFromString('not-an-id')),
        stubId: env.KV.get(a).id.equals(a),
      });
    }
    if (url.pathname === '/parallel') {
      const stub = env.KV.getByName('parallel');
      const answers = await Promise.all(Array.from({ length: 20 }, () => stub.fetch('https://do/count').then((r) => r.text())));
      return Response.json({ distinct: new Set(answers).size, last: await (await stub.fetch('https://do/count')).text() });
    }
    if (url.pathname === '/sql') return env.SQL.getByName(url.searchParams.get('name') ?? 'sql').fetch('https://do/');
    return env.KV.getByName(url.searchParams.get('name') ?? 'main').fetch(new Request('https://do' + url.pathname));
  },
};
