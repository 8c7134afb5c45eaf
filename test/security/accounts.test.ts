// Issue 22, accounts: a scoped token manages its own account's workers, routes and KV namespaces
// and nothing else. Another account's worker is a 404 word for word like a missing one (its
// existence does not leak), its name cannot be taken over, and the operator's token still does
// everything, acting on the default account, so single-tenant use is unchanged.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, textWorker, type TestCinder } from '../control/helpers.js';
import { cookieWorker, twoTenants, type Tenant } from './tenants.js';

let cinder: TestCinder;
let good: Tenant;
let evil: Tenant;

beforeAll(async () => {
  ({ cinder, good, evil } = await twoTenants());
  expect((await good.deploy('bank', cookieWorker('bank v1'))).status).toBe(201);
  expect((await evil.deploy('lure', textWorker('lure'))).status).toBe(201);
});
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('accounts and tokens (operator)', () => {
  it('lists accounts with their ids and worker counts; the default account holds the operator\'s workers', async () => {
    expect((await cinder.admin('PUT', '/workers/ops', { body: textWorker('ops'), headers: { 'content-type': 'application/javascript' } })).status).toBe(201);
    const res = await cinder.admin('GET', '/accounts');
    expect(res.status).toBe(200);
    const byName = Object.fromEntries(res.body.accounts.map((a: any) => [a.name, a]));
    expect(byName.good).toMatchObject({ id: good.id, workers: 1 });
    expect(byName.evil).toMatchObject({ id: evil.id, workers: 1 });
    expect(byName.default).toMatchObject({ id: 'default' });
    expect(good.id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('refuses a duplicate or malformed account name', async () => {
    expect((await cinder.admin('POST', '/accounts', { json: { name: 'good' } })).status).toBe(409);
    expect((await cinder.admin('POST', '/accounts', { json: { name: 'Bad Name' } })).status).toBe(400);
    expect((await cinder.admin('POST', '/accounts/nobody/tokens', { json: {} })).status).toBe(404);
  });

  it('shows a token once and stores only its SHA-256', async () => {
    const listed = await cinder.admin('GET', '/accounts/good/tokens');
    expect(listed.body.tokens).toHaveLength(1);
    expect(JSON.stringify(listed.body)).not.toContain(good.token);
    const db = new Database(join(cinder.dataDir, 'deployments.sqlite'), { readonly: true });
    const rows = db.prepare('SELECT * FROM tokens').all() as Record<string, unknown>[];
    db.close();
    expect(JSON.stringify(rows)).not.toContain(good.token);
    expect(rows.map((r) => r.hash)).toContain(createHash('sha256').update(good.token).digest('hex'));
  });

  it('revokes a token at once', async () => {
    const made = await cinder.admin('POST', '/accounts/good/tokens', { json: { label: 'short-lived' } });
    const headers = { authorization: `Bearer ${made.body.token}` };
    expect((await cinder.admin('GET', '/workers', { headers })).status).toBe(200);
    expect((await cinder.admin('DELETE', `/tokens/${made.body.id}`)).status).toBe(200);
    expect((await cinder.admin('GET', '/workers', { headers })).status).toBe(403);
  });
});

describe('a scoped token sees and manages only its own account', () => {
  it('lists only its own workers and routes', async () => {
    expect((await evil.admin('GET', '/workers')).body.workers.map((w: any) => w.name)).toEqual(['lure']);
    expect((await evil.admin('GET', '/routes')).body.routes.every((r: any) => r.worker === 'lure')).toBe(true);
    // the operator sees every account's
    expect((await cinder.admin('GET', '/workers')).body.workers.map((w: any) => w.name)).toEqual(expect.arrayContaining(['bank', 'lure']));
  });

  it('gets a 404 for another account\'s worker on every endpoint, the same body as for a missing one', async () => {
    const endpoints: [string, string, unknown?][] = [
      ['GET', '/workers/bank'],
      ['GET', '/workers/bank/versions'],
      ['GET', '/workers/bank/versions/1'],
      ['POST', '/workers/bank/rollback'],
      ['GET', '/workers/bank/routes'],
      ['PUT', '/workers/bank/routes', { routes: ['evil.example.org/*'] }],
      ['GET', '/workers/bank/usage'],
      ['GET', '/workers/bank/tail'],
      ['GET', '/workers/bank/log-level'],
      ['PUT', '/workers/bank/log-level', { level: 'silent' }],
      ['GET', '/workers/bank/schedules'],
      ['GET', '/workers/bank/secrets'],
      ['PUT', '/workers/bank/secrets', { name: 'STOLEN', text: 'attacker value', type: 'secret_text' }],
      ['GET', '/workers/bank/secrets/STOLEN'],
      ['DELETE', '/workers/bank/secrets/STOLEN'],
      ['DELETE', '/workers/bank'],
      // a percent-encoded name is the same name
      ['GET', '/workers/%62ank'],
    ];
    for (const [method, path, json] of endpoints) {
      const res = await evil.admin(method, path, json === undefined ? {} : { json });
      const missing = await evil.admin(method, path.replace(/bank|%62ank/, 'nosuchworker'), json === undefined ? {} : { json });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(404);
      expect(res.body, `${method} ${path}`).toEqual({ error: 'no worker named "bank"' });
      expect(missing.status, `${method} ${path} (missing)`).toBe(404);
      expect(missing.text.replace('nosuchworker', 'bank'), `${method} ${path}`).toBe(res.text);
    }
    // and nothing changed for the victim
    const served = await cinder.get('bank.example.com', '/');
    expect(served.text).toBe('bank v1 cookie=');
    expect((await good.admin('GET', '/workers/bank')).body.routes).toEqual([]);
  });

  it('cannot take another account\'s worker name over (409), and the victim keeps serving', async () => {
    const res = await evil.deploy('bank', textWorker('pwned'));
    expect(res.status).toBe(409);
    expect(res.body.error).toMatch(/the worker name "bank" belongs to another account/);
    expect((await cinder.get('bank.example.com', '/')).text).toBe('bank v1 cookie=');
    expect((await good.admin('GET', '/workers/bank/versions')).body.versions).toHaveLength(1);
  });

  it('is refused the operator\'s endpoints (403)', async () => {
    for (const [method, path] of [['GET', '/accounts'], ['POST', '/accounts'], ['GET', '/accounts/good/tokens'], ['POST', '/accounts/evil/tokens'], ['DELETE', '/tokens/tok_0'], ['GET', '/metrics']]) {
      const res = await evil.admin(method, path, method === 'POST' ? { json: { name: 'x' } } : {});
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error).toMatch(/operator/);
    }
  });

  it('may use only its own account id in Cloudflare-shaped paths', async () => {
    const res = await evil.admin('GET', `/client/v4/accounts/${good.id}/workers/scripts`);
    expect(res.status).toBe(403);
  });

  it('lets the operator manage any account\'s worker, which stays in its account', async () => {
    const res = await cinder.admin('PUT', '/workers/lure', { body: multipart({ main_module: 'index.js' }, { 'index.js': textWorker('lure v2') }) });
    expect(res.status, res.text).toBe(201);
    expect((await evil.admin('GET', '/workers/lure')).body.version.number).toBe(2);
  });
});

describe('bindings resolve only to the account\'s own resources', () => {
  it('keeps KV namespace ids per account: naming the victim\'s id reads nothing of it', async () => {
    const put = await good.admin('PUT', '/kv/sessions/values/alice', { body: 'secret-session' });
    expect(put.status, put.text).toBe(200);
    // the victim's own worker reads it
    const reader = `export default { async fetch() { return new Response(String(await env.KV.get('alice'))); } };`.replace('async fetch()', 'async fetch(request, env)');
    expect((await good.deploy('bank-kv', reader, { bindings: [{ type: 'kv_namespace', name: 'KV', namespace_id: 'sessions' }] })).status).toBe(201);
    expect((await cinder.get('bank-kv.example.com')).text).toBe('secret-session');
    // the attacker's upload naming the same id gets its own, empty namespace
    expect((await evil.deploy('thief', reader, { bindings: [{ type: 'kv_namespace', name: 'KV', namespace_id: 'sessions' }] })).status).toBe(201);
    expect((await cinder.get('thief.example.com')).text).toBe('null');
    expect((await evil.admin('GET', '/kv/sessions/values/alice')).status).toBe(404);
    expect((await evil.admin('GET', '/kv/sessions/keys')).body.keys).toEqual([]);
    // and its writes land in its own namespace, not the victim's
    await evil.admin('PUT', '/kv/sessions/values/alice', { body: 'forged' });
    expect((await cinder.get('bank-kv.example.com')).text).toBe('secret-session');
    expect((await good.admin('GET', '/kv/sessions/values/alice')).text).toBe('secret-session');
  });

  it('refuses at deploy a service binding to another account\'s worker', async () => {
    const res = await evil.deploy('caller', textWorker('caller'), { bindings: [{ type: 'service', name: 'BANK', service: 'bank' }] });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/binding BANK: no worker named "bank" in this account/);
    expect((await evil.admin('GET', '/workers/caller')).status).toBe(404);
  });

  it('never calls a worker of another account that took a bound name later', async () => {
    const caller = `export default { async fetch(request, env) { try { return await env.HELPER.fetch(request); } catch (e) { return new Response('refused: ' + e.message); } } };`;
    expect((await good.deploy('bank-front', caller, { bindings: [{ type: 'service', name: 'HELPER', service: 'helper' }] })).status).toBe(201);
    // the name was free; the attacker takes it
    expect((await evil.deploy('helper', cookieWorker('stolen'))).status).toBe(201);
    const res = await cinder.get('bank-front.example.com');
    expect(res.text).toMatch(/^refused: .*no worker named "helper" is deployed/);
  });
});
