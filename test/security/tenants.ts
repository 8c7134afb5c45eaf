// Two tenants on one `cinder serve`: the operator makes accounts "good" (the victim) and "evil"
// (the attacker) and a scoped token for each; `as(token)` calls the admin API with that token.
import { expect } from 'vitest';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';
import type { ServeOptions } from '../../src/app/serve.js';
import { kvServeExtension } from '../../src/app/kv.js';

export interface Tenant {
  id: string;
  name: string;
  token: string;
  admin: (method: string, path: string, init?: { body?: BodyInit; json?: unknown; headers?: Record<string, string> }) => ReturnType<TestCinder['admin']>;
  deploy: (worker: string, code: string, metadata?: Record<string, unknown>) => ReturnType<TestCinder['admin']>;
}

export async function makeTenant(cinder: TestCinder, name: string): Promise<Tenant> {
  const account = await cinder.admin('POST', '/accounts', { json: { name } });
  expect(account.status, account.text).toBe(201);
  const made = await cinder.admin('POST', `/accounts/${name}/tokens`, { json: { label: 'test' } });
  expect(made.status, made.text).toBe(201);
  const token = made.body.token as string;
  const admin: Tenant['admin'] = (method, path, init = {}) => cinder.admin(method, path, { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } });
  return {
    id: account.body.id,
    name,
    token,
    admin,
    deploy: (worker, code, metadata = {}) => admin('PUT', `/workers/${worker}`, { body: multipart({ main_module: 'index.js', ...metadata }, { 'index.js': code }) }),
  };
}

export async function twoTenants(options: Partial<ServeOptions> = {}): Promise<{ cinder: TestCinder; good: Tenant; evil: Tenant }> {
  // KV on the admin port too (/kv), as `cinder serve` has it.
  const cinder = await startCinder({ extensions: [kvServeExtension()], ...options });
  return { cinder, good: await makeTenant(cinder, 'good'), evil: await makeTenant(cinder, 'evil') };
}

/** A module worker answering `text`, with a session cookie (what a stolen route would see). */
export const cookieWorker = (text: string) =>
  `export default { fetch(request) { return new Response(${JSON.stringify(text)} + ' cookie=' + (request.headers.get('cookie') ?? ''), { headers: { 'set-cookie': 'session=${text}' } }); } };`;
