// The admin API over real HTTP: auth, upload, inspect, versions, rollback, delete.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, startCinder, textWorker, TOKEN, type TestCinder } from './helpers.js';

let cinder: TestCinder;
beforeAll(async () => {
  cinder = await startCinder();
});
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('auth', () => {
  it('answers /healthz without a token, and nothing else', async () => {
    const res = await fetch(`${cinder.server.adminUrl}/healthz`);
    expect(res.status).toBe(200);
    // Up, and who answers (src/app/health.ts); nothing about workers or the platform.
    expect(await res.json()).toEqual({ ok: true, node: expect.any(String), pid: expect.any(Number), processes: 1 });
  });

  it('is 401 without a bearer token', async () => {
    for (const [method, path] of [['GET', '/workers'], ['PUT', '/workers/x'], ['GET', '/routes'], ['POST', '/workers/x/rollback'], ['DELETE', '/workers/x'], ['GET', '/nowhere']]) {
      const res = await fetch(`${cinder.server.adminUrl}${path}`, { method, body: method === 'PUT' ? textWorker('x') : undefined });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await res.json()).error).toMatch(/Authorization: Bearer/);
    }
  });

  it('is 401 for another scheme, 403 for a wrong token', async () => {
    expect((await cinder.admin('GET', '/workers', { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } })).status).toBe(401);
    expect((await cinder.admin('GET', '/workers', { headers: { authorization: 'Bearer' } })).status).toBe(401);
    const wrong = await cinder.admin('GET', '/workers', { headers: { authorization: 'Bearer wrong-token-that-is-long-enough' } });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error).toMatch(/not valid/);
    // a prefix of the right token, and the right token plus a character, are wrong too
    expect((await cinder.admin('GET', '/workers', { headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}` } })).status).toBe(403);
    expect((await cinder.admin('GET', '/workers', { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(403);
    const upload = await cinder.admin('PUT', '/workers/sneaky', { body: textWorker('no'), headers: { authorization: 'Bearer nope' } });
    expect(upload.status).toBe(403);
    expect((await cinder.get('sneaky.example.com')).status).toBe(404);
  });

  it('accepts the right token (scheme is case-insensitive)', async () => {
    expect((await cinder.admin('GET', '/workers', { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
  });
});

describe('workers', () => {
  it('uploads a plain script and serves it by host', async () => {
    const res = await cinder.admin('PUT', '/workers/hello', { body: textWorker('hello v1'), headers: { 'content-type': 'application/javascript' } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: 'hello', number: 1, main_module: 'worker.js', routes: [] });
    expect(res.body.version).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(res.body.size).toBe(Buffer.byteLength(textWorker('hello v1')));
    expect(Date.parse(res.body.created_at)).toBeGreaterThan(Date.now() - 60_000);

    const served = await cinder.get('hello.example.com', '/');
    expect(served.status).toBe(200);
    expect(served.text).toBe('hello v1');
  });

  it('uploads multipart with bindings, and shows them with secrets redacted', async () => {
    const code = `export default { fetch(req, env) { return Response.json({ greeting: env.GREETING, secret: env.SECRET, config: env.CONFIG, mode: env.MODE }); } };`;
    const res = await cinder.admin('PUT', '/workers/configured', {
      body: multipart(
        {
          main_module: 'index.js',
          bindings: [
            { type: 'plain_text', name: 'GREETING', text: 'hi' },
            { type: 'secret_text', name: 'SECRET', text: 'hunter2-very-secret' },
            { type: 'json', name: 'CONFIG', json: { a: [1, 2] } },
            { type: 'kv_namespace', name: 'CACHE', namespace_id: 'ns-1' },
          ],
          vars: { MODE: 'prod' },
          compatibility_date: '2025-01-01',
          crons: ['*/5 * * * *'],
          limits: { cpu_ms: 100 },
        },
        { 'index.js': code },
      ),
    });
    expect(res.status, res.text).toBe(201);
    expect(res.text).not.toContain('hunter2');

    const served = await cinder.get('configured.example.com');
    expect(JSON.parse(served.text)).toEqual({ greeting: 'hi', secret: 'hunter2-very-secret', config: { a: [1, 2] }, mode: 'prod' });

    const info = await cinder.admin('GET', '/workers/configured');
    expect(info.status).toBe(200);
    expect(info.text).not.toContain('hunter2');
    expect(info.body).toMatchObject({
      name: 'configured',
      version: { number: 1 },
      main_module: 'index.js',
      crons: ['*/5 * * * *'],
      limits: { cpu_ms: 100 },
      compatibility_date: '2025-01-01',
      routes: [],
    });
    expect(info.body.bindings).toEqual([
      { name: 'GREETING', type: 'plain_text', text: 'hi' },
      { name: 'SECRET', type: 'secret_text' },
      { name: 'CONFIG', type: 'json', json: { a: [1, 2] } },
      { name: 'CACHE', type: 'kv_namespace', namespace_id: 'ns-1' },
      { name: 'MODE', type: 'plain_text', text: 'prod' },
    ]);
    expect(info.body.modules).toEqual([{ name: 'index.js', type: 'esm', size: Buffer.byteLength(code) }]);
  });

  it('keeps secrets across an upload with keep_bindings', async () => {
    const code = `export default { fetch(req, env) { return new Response(String(env.SECRET) + "/" + String(env.GREETING)); } };`;
    const res = await cinder.admin('PUT', '/workers/configured', { body: multipart({ main_module: 'index.js', keep_bindings: ['secret_text'] }, { 'index.js': code }) });
    expect(res.status, res.text).toBe(201);
    expect((await cinder.get('configured.example.com')).text).toBe('hunter2-very-secret/undefined');
  });

  it('serves a service-worker script uploaded as body_part', async () => {
    const code = `addEventListener("fetch", (event) => event.respondWith(new Response("sw " + VERSION_TAG)));\nconst VERSION_TAG = "ok";`;
    const res = await cinder.admin('PUT', '/workers/classic', { body: multipart({ body_part: 'worker.js' }, { 'worker.js': { code, type: 'application/javascript' } }) });
    expect(res.status, res.text).toBe(201);
    expect((await cinder.get('classic.example.com')).text).toBe('sw ok');
  });

  it('lists workers', async () => {
    const res = await cinder.admin('GET', '/workers');
    expect(res.status).toBe(200);
    const names = res.body.workers.map((w: { name: string }) => w.name);
    expect(names).toEqual(expect.arrayContaining(['hello', 'configured', 'classic']));
    const hello = res.body.workers.find((w: { name: string }) => w.name === 'hello');
    expect(hello).toMatchObject({ name: 'hello', version: { number: 1 }, routes: [] });
  });

  it('is 404 for a worker that does not exist, and for unknown endpoints', async () => {
    const res = await cinder.admin('GET', '/workers/ghost');
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('no worker named "ghost"');
    expect((await cinder.admin('GET', '/workers/ghost/versions')).status).toBe(404);
    expect((await cinder.admin('DELETE', '/workers/ghost')).status).toBe(404);
    const nowhere = await cinder.admin('GET', '/nowhere');
    expect(nowhere.status).toBe(404);
    expect(nowhere.body.error).toMatch(/no such endpoint: GET \/nowhere/);
  });
});

describe('versions and rollback', () => {
  it('makes every upload a new immutable version', async () => {
    const v2 = await cinder.admin('PUT', '/workers/hello', { body: textWorker('hello v2') });
    const v3 = await cinder.admin('PUT', '/workers/hello', { body: textWorker('hello v3') });
    expect([v2.body.number, v3.body.number]).toEqual([2, 3]);
    expect((await cinder.get('hello.example.com')).text).toBe('hello v3');

    const list = await cinder.admin('GET', '/workers/hello/versions');
    expect(list.status).toBe(200);
    expect(list.body.current).toBe(v3.body.version);
    expect(list.body.versions.map((v: { number: number }) => v.number)).toEqual([3, 2, 1]);
    expect(list.body.versions.map((v: { current: boolean }) => v.current)).toEqual([true, false, false]);
    expect(new Set(list.body.versions.map((v: { id: string }) => v.id)).size).toBe(3);

    const one = await cinder.admin('GET', `/workers/hello/versions/${v2.body.version}`);
    expect(one.body).toMatchObject({ id: v2.body.version, number: 2, current: false, hash: v2.body.hash });
    expect((await cinder.admin('GET', '/workers/hello/versions/2')).body.id).toBe(v2.body.version);
  });

  it('gives the same hash to the same code', async () => {
    const list = (await cinder.admin('GET', '/workers/hello/versions')).body.versions;
    const again = await cinder.admin('PUT', '/workers/hello', { body: textWorker('hello v3') });
    expect(again.body.hash).toBe(list[0].hash);
    expect(again.body.version).not.toBe(list[0].version);
  });

  it('rolls back to the previous version, then to a named one', async () => {
    // versions now: 4 (= v3 code), 3, 2, 1
    const back = await cinder.admin('POST', '/workers/hello/rollback');
    expect(back.status, back.text).toBe(200);
    expect(back.body).toMatchObject({ changed: true, version: { number: 3 }, previous: { number: 4 } });
    const again = await cinder.admin('POST', '/workers/hello/rollback');
    expect(again.body).toMatchObject({ version: { number: 2 }, previous: { number: 3 } });
    expect((await cinder.get('hello.example.com')).text).toBe('hello v2');

    const first = (await cinder.admin('GET', '/workers/hello/versions')).body.versions.find((v: { number: number }) => v.number === 1);
    const byId = await cinder.admin('POST', '/workers/hello/rollback', { json: { version: first.id } });
    expect(byId.body).toMatchObject({ changed: true, version: { id: first.id, number: 1 } });
    expect((await cinder.get('hello.example.com')).text).toBe('hello v1');

    const byNumber = await cinder.admin('POST', '/workers/hello/rollback', { json: { version: 4 } });
    expect(byNumber.body).toMatchObject({ changed: true, version: { number: 4 } });
    expect((await cinder.get('hello.example.com')).text).toBe('hello v3');

    const same = await cinder.admin('POST', '/workers/hello/rollback', { json: { version: 4 } });
    expect(same.status).toBe(200);
    expect(same.body.changed).toBe(false);

    const info = await cinder.admin('GET', '/workers/hello');
    expect(info.body.version.number).toBe(4);
  });

  it('refuses a rollback it cannot do', async () => {
    const missing = await cinder.admin('POST', '/workers/hello/rollback', { json: { version: 'no-such-version' } });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatch(/has no version "no-such-version"/);
    const only = await cinder.admin('POST', '/workers/classic/rollback');
    expect(only.status).toBe(409);
    expect(only.body.error).toMatch(/no version older/);
    const bad = await cinder.admin('POST', '/workers/hello/rollback', { body: '{not json', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect((await cinder.admin('POST', '/workers/ghost/rollback')).status).toBe(404);
  });
});

describe('delete', () => {
  it('deletes a worker, its versions and its routes', async () => {
    await cinder.admin('PUT', '/workers/doomed', { body: multipart({ main_module: 'a.js', routes: ['doomed.example.org/*'] }, { 'a.js': textWorker('doomed') }) });
    expect((await cinder.get('doomed.example.org')).text).toBe('doomed');
    const res = await cinder.admin('DELETE', '/workers/doomed');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted: 'doomed' });
    expect((await cinder.admin('GET', '/workers/doomed')).status).toBe(404);
    expect((await cinder.admin('GET', '/workers/doomed/versions')).status).toBe(404);
    expect((await cinder.admin('GET', '/routes')).body.routes).not.toContainEqual(expect.objectContaining({ worker: 'doomed' }));
    const gone = await cinder.get('doomed.example.org');
    expect(gone.status).toBe(404);
    expect(gone.text).toMatch(/No worker matched/);
    // the name is free again, starting over at version 1
    const fresh = await cinder.admin('PUT', '/workers/doomed', { body: textWorker('reborn') });
    expect(fresh.body.number).toBe(1);
  });
});

describe('logs', () => {
  it('never contain the admin token or a presented token', () => {
    const all = JSON.stringify(cinder.logs);
    expect(cinder.logs.some((l) => l.admin === true)).toBe(true);
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain('wrong-token-that-is-long-enough');
    expect(all).not.toContain('hunter2');
  });
});
