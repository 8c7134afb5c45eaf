// The D1 Worker API as Cloudflare documents it, run in real workers against SQLite files:
// prepare/bind with first/all/raw/run, batch (atomic), exec, withSession, dump; the values D1
// takes and gives back, and its errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startD1Harness, type D1Harness } from './fixtures.js';

describe('D1 Worker API', () => {
  let h: D1Harness;
  beforeAll(async () => {
    h = await startD1Harness();
    const setup = await h.run(`return env.DB.exec(\`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, age INTEGER, avatar BLOB, active INTEGER)
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), title TEXT)\`);`);
    expect(setup, JSON.stringify(setup)).toHaveProperty("ok.count", 2);
  });
  afterAll(() => h.close());

  it('runs a statement with bound values and reports D1 metadata', async () => {
    const { ok } = await h.run(`
      const r = await env.DB.prepare('INSERT INTO users (name, age, avatar, active) VALUES (?, ?, ?, ?)').bind('ada', 36, new Uint8Array([1, 2, 255]), true).run();
      return r;`);
    expect(ok.success).toBe(true);
    expect(ok.results).toEqual([]);
    expect(ok.meta).toMatchObject({ changes: 1, last_row_id: 1, changed_db: true, rows_written: 1, served_by: 'cinder-d1' });
    expect(ok.meta.size_after).toBeGreaterThan(0);
    expect(typeof ok.meta.duration).toBe('number');
  });

  it('answers all(), first(), first(column) and raw() in D1 shapes, BLOBs as arrays of numbers', async () => {
    await h.run(`await env.DB.prepare('INSERT INTO users (name, age, active) VALUES (?1, ?2, ?3)').bind('bob', 41, false).run();`);
    const { ok } = await h.run(`
      const all = await env.DB.prepare('SELECT name, age, avatar, active FROM users ORDER BY id').all();
      const first = await env.DB.prepare('SELECT name FROM users WHERE age > ?').bind(40).first();
      const column = await env.DB.prepare('SELECT count(*) AS n FROM users').first('n');
      const none = await env.DB.prepare('SELECT name FROM users WHERE age > 100').first();
      const raw = await env.DB.prepare('SELECT name, age FROM users ORDER BY id').raw();
      const rawNames = await env.DB.prepare('SELECT name, age FROM users ORDER BY id').raw({ columnNames: true });
      return { all, first, column, none, raw, rawNames };`);
    expect(ok.all.success).toBe(true);
    expect(ok.all.results).toEqual([
      { name: 'ada', age: 36, avatar: [1, 2, 255], active: 1 },
      { name: 'bob', age: 41, avatar: null, active: 0 },
    ]);
    expect(ok.all.meta.rows_read).toBe(2);
    expect(ok.first).toEqual({ name: 'bob' });
    expect(ok.column).toBe(2);
    expect(ok.none).toBeNull();
    expect(ok.raw).toEqual([['ada', 36], ['bob', 41]]);
    expect(ok.rawNames).toEqual([['name', 'age'], ['ada', 36], ['bob', 41]]);
  });

  it('refuses values D1 does not take, with D1_TYPE_ERROR', async () => {
    for (const [value, message] of [
      ['undefined', "D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'"],
      ['{ a: 1 }', "D1_TYPE_ERROR: Type 'object' not supported for value '[object Object]'"],
      ['10n', "D1_TYPE_ERROR: Type 'bigint' not supported for value '10'"],
    ]) {
      const { error } = await h.run(`return env.DB.prepare('SELECT ?').bind(${value});`);
      expect(error).toMatchObject({ name: 'Error', message });
    }
  });

  it('reports SQL errors as D1_ERROR with the SQLite code, and first(column) of a missing column', async () => {
    const missing = await h.run(`return await env.DB.prepare('SELECT * FROM nope').all();`);
    expect(missing.error).toEqual({ name: 'Error', message: 'D1_ERROR: no such table: nope: SQLITE_ERROR', cause: 'no such table: nope: SQLITE_ERROR' });
    const unique = await h.run(`return await env.DB.prepare('INSERT INTO users (name) VALUES (?)').bind('ada').run();`);
    expect(unique.error!.message).toBe('D1_ERROR: UNIQUE constraint failed: users.name: SQLITE_CONSTRAINT');
    const fk = await h.run(`return await env.DB.prepare('INSERT INTO posts (user_id, title) VALUES (99, ?)').bind('x').run();`);
    expect(fk.error!.message).toBe('D1_ERROR: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT');
    const column = await h.run(`return await env.DB.prepare('SELECT name FROM users').first('age');`);
    expect(column.error!.message).toBe('D1_COLUMN_NOTFOUND: Column not found (age)');
  });

  it('runs a batch atomically: one failing statement rolls every one back', async () => {
    const failed = await h.run(`
      return await env.DB.batch([
        env.DB.prepare('INSERT INTO users (name) VALUES (?)').bind('carol'),
        env.DB.prepare('UPDATE users SET age = 99 WHERE name = ?').bind('ada'),
        env.DB.prepare('INSERT INTO users (name) VALUES (?)').bind('bob'),
      ]);`);
    expect(failed.error!.message).toBe('D1_ERROR: UNIQUE constraint failed: users.name: SQLITE_CONSTRAINT');
    const after = await h.run(`return (await env.DB.prepare('SELECT name, age FROM users ORDER BY id').all()).results;`);
    expect(after.ok).toEqual([{ name: 'ada', age: 36 }, { name: 'bob', age: 41 }]);

    const done = await h.run(`
      const results = await env.DB.batch([
        env.DB.prepare('INSERT INTO users (name, age) VALUES (?, ?)').bind('carol', 7),
        env.DB.prepare('SELECT name FROM users WHERE age < ?').bind(10),
      ]);
      return results.map((r) => [r.success, r.meta.changes, r.results]);`);
    expect(done.ok).toEqual([[true, 1, []], [true, 0, [{ name: 'carol' }]]]);
  });

  it('exec() names the failing line as D1 does', async () => {
    const { error } = await h.run(`return await env.DB.exec('INSERT INTO posts (user_id, title) VALUES (1, "a")\\nSELEC nonsense\\nINSERT INTO posts (user_id, title) VALUES (1, "b")');`);
    expect(error!.message).toBe('D1_EXEC_ERROR: Error in line 2: SELEC nonsense: near "SELEC": syntax error: SQLITE_ERROR');
    const { ok } = await h.run(`return await env.DB.prepare('SELECT title FROM posts').raw();`);
    expect(ok).toEqual([['a']]);
  });

  it('withSession() gives the same API and an opaque, advancing bookmark', async () => {
    const { ok } = await h.run(`
      const session = env.DB.withSession('first-primary');
      const before = session.getBookmark();
      const row = await session.prepare('SELECT count(*) AS n FROM users').first();
      const b1 = session.getBookmark();
      await session.batch([session.prepare('UPDATE users SET age = age + 1 WHERE name = ?').bind('carol')]);
      const b2 = session.getBookmark();
      const resumed = env.DB.withSession(b2);
      return { before, row, b1: typeof b1, advanced: b2 > b1, resumed: resumed.getBookmark() === b2, plain: env.DB.withSession().getBookmark() };`);
    expect(ok).toEqual({ before: null, row: { n: 3 }, b1: 'string', advanced: true, resumed: true, plain: null });
  });

  it('dump() answers the database as a SQLite file', async () => {
    const { ok, error } = await h.run(`const bytes = new Uint8Array(await env.DB.dump()); return [bytes.byteLength > 1000, new TextDecoder().decode(bytes.slice(0, 15))];`);
    expect(error).toBeUndefined();
    expect(ok).toEqual([true, "SQLite format 3"]);
  });

  it('keeps tenant SQL inside its own file: no ATTACH, VACUUM INTO, transactions or unsafe pragmas', async () => {
    const attempts = {
      attach: `ATTACH DATABASE '${h.dataDir}/d1/other.sqlite' AS other`,
      vacuum: `VACUUM INTO '${h.dataDir}/copy.sqlite'`,
      begin: 'BEGIN TRANSACTION',
      savepoint: 'SAVEPOINT s1',
      journal: 'PRAGMA journal_mode = OFF',
      pages: 'PRAGMA max_page_count = 100000000',
      extension: "SELECT load_extension('/tmp/x.so')",
    };
    const out: Record<string, string> = {};
    for (const [name, sql] of Object.entries(attempts)) {
      const { error } = await h.run(`return await env.DB.prepare(${JSON.stringify(sql)}).run();`);
      out[name] = error?.message ?? 'ALLOWED';
    }
    expect(out.attach).toBe('D1_ERROR: ATTACH and DETACH are not allowed: SQLITE_AUTH');
    expect(out.vacuum).toBe('D1_ERROR: VACUUM is not allowed: SQLITE_AUTH');
    expect(out.begin).toMatch(/^D1_ERROR: D1 runs each call in its own transaction; use batch\(\)/);
    expect(out.savepoint).toMatch(/^D1_ERROR: D1 runs each call in its own transaction/);
    expect(out.journal).toBe('D1_ERROR: PRAGMA journal_mode is not allowed: SQLITE_AUTH');
    expect(out.pages).toBe('D1_ERROR: PRAGMA max_page_count is not allowed: SQLITE_AUTH');
    expect(out.extension).toMatch(/^D1_ERROR: (load_extension\(\) is not allowed|not authorized|no such function: load_extension)/);
    const allowed = await h.run(`return await env.DB.prepare('PRAGMA table_list').all();`);
    expect(allowed.ok.success).toBe(true);
  });

  it('bounds bound parameters (100) and statement length (100 KB)', async () => {
    const params = await h.run(`return await env.DB.prepare('SELECT ' + Array.from({ length: 101 }, () => '?').join(',')).bind(...Array.from({ length: 101 }, (_, i) => i)).all();`);
    expect(params.error!.message).toMatch(/^D1_ERROR: too many SQL variables/);
    const long = await h.run(`return await env.DB.prepare('SELECT 1 -- ' + 'x'.repeat(100_001)).all();`);
    expect(long.error!.message).toMatch(/^D1_ERROR: statement too long/);
  });
});
