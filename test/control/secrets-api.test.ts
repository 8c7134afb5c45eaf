// The admin API's secrets routes (/workers/:name/secrets, in the body shapes of Cloudflare's
// /workers/scripts/:name/secrets): what a worker then sees, what uploads keep, what is refused, and
// that no answer and no log line ever carries a value.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, startCinder, type TestCinder } from './helpers.js';
import { ADD_WASM, partsForm } from '../modules/fixtures.js';

const VALUE = 'pw-5e0c7a91d4b2f836-value';
const envWorker = 'export default { fetch(_r, env) { return new Response(`${env.DB_PASSWORD}|${env.MODE}`) } };';

let cinder: TestCinder;

beforeAll(async () => {
  cinder = await startCinder();
  const res = await cinder.admin('PUT', '/workers/app', { body: multipart({ main_module: 'index.js', vars: { MODE: 'prod' } }, { 'index.js': envWorker }) });
  expect(res.status).toBe(201);
});
afterAll(() => cinder.close({ cleanup: true }));

const put = (body: unknown, worker = 'app') => cinder.admin('PUT', `/workers/${worker}/secrets`, { json: body });

describe('/workers/:name/secrets', () => {
  it('sets a secret as a new live version the worker sees, and answers its name and type only', async () => {
    const res = await put({ name: 'DB_PASSWORD', text: VALUE, type: 'secret_text' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'DB_PASSWORD', type: 'secret_text', version: { number: 2 } });
    expect(res.text).not.toContain(VALUE);
    expect((await cinder.get('app.localhost')).text).toBe(`${VALUE}|prod`);
  });

  it('lists and shows secrets by name, never by value', async () => {
    const list = await cinder.admin('GET', '/workers/app/secrets');
    expect(list.body).toEqual({ secrets: [{ name: 'DB_PASSWORD', type: 'secret_text' }] });
    expect((await cinder.admin('GET', '/workers/app/secrets/DB_PASSWORD')).body).toEqual({ name: 'DB_PASSWORD', type: 'secret_text' });
    expect((await cinder.admin('GET', '/workers/app/secrets/NOPE')).status).toBe(404);
    for (const path of ['/workers/app', '/workers/app/versions', '/workers/app/versions/2']) {
      const res = await cinder.admin('GET', path);
      expect(res.text).toContain('DB_PASSWORD');
      expect(res.text, path).not.toContain(VALUE);
    }
  });

  it('refuses malformed bodies by what is wrong, without echoing the value', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ name: 'DB_PASSWORD' }, 400, /"text" must be the secret's value as a string/],
      [{ text: VALUE }, 400, /"name" must be the secret's name/],
      [{ name: 'db-password', text: VALUE }, 400, /invalid binding name "db-password"/],
      [{ name: 'X', text: VALUE, type: 'plain_text' }, 400, /"type" must be "secret_text"/],
      [{ name: 'MODE', text: VALUE }, 409, /already has a plain_text binding named MODE/],
      [{ name: 'BIG', text: VALUE.repeat(300) }, 413, /secret BIG is \d+ bytes, over the limit of 5120 bytes/],
      [[VALUE], 400, /the body must be a JSON object such as/],
    ];
    for (const [body, status, message] of cases) {
      const res = await put(body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(status);
      expect(res.body.error).toMatch(message);
      expect(res.text).not.toContain(VALUE);
    }
    expect((await cinder.admin('PUT', '/workers/app/secrets', { body: 'not json', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await put({ name: 'X', text: 'v' }, 'ghost')).body.error).toMatch(/no worker named "ghost"; deploy it first/);
  });

  it('keeps secrets across an upload that asks (keep_bindings), and drops them on one that does not, as Cloudflare does', async () => {
    const kept = await cinder.admin('PUT', '/workers/app', { body: multipart({ main_module: 'index.js', vars: { MODE: 'v3' }, keep_bindings: ['secret_text'] }, { 'index.js': envWorker }) });
    expect(kept.status).toBe(201);
    expect((await cinder.get('app.localhost')).text).toBe(`${VALUE}|v3`);
    const dropped = await cinder.admin('PUT', '/workers/app', { body: multipart({ main_module: 'index.js', vars: { MODE: 'v4' } }, { 'index.js': envWorker }) });
    expect(dropped.status).toBe(201);
    expect((await cinder.get('app.localhost')).text).toBe('undefined|v4');
    // a rollback brings back the version with its secret
    expect((await cinder.admin('POST', '/workers/app/rollback', { json: { version: 3 } })).status).toBe(200);
    expect((await cinder.get('app.localhost')).text).toBe(`${VALUE}|v3`);
  });

  it('deletes a secret as a new live version', async () => {
    const res = await cinder.admin('DELETE', '/workers/app/secrets/DB_PASSWORD');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ deleted: 'DB_PASSWORD', version: { number: 5 } });
    expect((await cinder.get('app.localhost')).text).toBe('undefined|v3');
    expect((await cinder.admin('DELETE', '/workers/app/secrets/DB_PASSWORD')).status).toBe(404);
    expect((await cinder.admin('DELETE', '/workers/app/secrets/MODE')).body.error).toMatch(/has no secret named "MODE"/);
  });

  it('keeps the version\'s other modules (text, wasm) and compatibility flags in the version a secret makes', async () => {
    const entry = `import page from "./page.html";\nimport addModule from "./add.wasm";\nexport default { fetch(_r, env) { const { add } = new WebAssembly.Instance(addModule).exports; return new Response(\`\${page}|\${add(40, 2)}|\${env.KEY}\`) } };`;
    const res = await cinder.admin('PUT', '/workers/mods', {
      body: partsForm({ main_module: 'index.js', compatibility_flags: ['nodejs_compat'], compatibility_date: '2025-01-01' }, {
        'index.js': { body: entry, type: 'application/javascript+module' },
        'page.html': { body: '<p>hi</p>', type: 'text/plain' },
        'add.wasm': { body: ADD_WASM, type: 'application/wasm' },
      }),
    });
    expect(res.status, res.text).toBe(201);
    expect((await cinder.get('mods.localhost')).text).toBe('<p>hi</p>|42|undefined');
    expect((await put({ name: 'KEY', text: VALUE }, 'mods')).status).toBe(200);
    expect((await cinder.get('mods.localhost')).text).toBe(`<p>hi</p>|42|${VALUE}`);
    const live = (await cinder.admin('GET', '/workers/mods')).body;
    expect(live.modules.map((m: { name: string; type: string }) => `${m.name}:${m.type}`)).toEqual(['index.js:esm', 'page.html:text', 'add.wasm:wasm']);
    expect(live.compatibility_date).toBe('2025-01-01');
    expect(live.compatibility_flags).toEqual(['nodejs_compat']);
  });

  it('never put a value in the host log', () => {
    expect(cinder.logs.some((l) => l.admin && String(l.path).includes('/secrets'))).toBe(true);
    expect(JSON.stringify(cinder.logs)).not.toContain(VALUE);
  });
});
