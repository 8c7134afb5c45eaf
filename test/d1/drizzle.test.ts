// Drizzle ORM's D1 driver, unchanged, in a worker bundled as wrangler would: insert (with
// RETURNING), select, get, update, batch and a unique-constraint failure, through real HTTP.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorker } from '../../src/app/bundle.js';
import { d1Binding, startD1Harness, type D1Harness } from './fixtures.js';

const entry = fileURLToPath(new URL('./workers/drizzle-app.ts', import.meta.url));

describe('Drizzle ORM on D1', () => {
  let h: D1Harness;
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await h.server.request('app', path, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    return { status: response.status, json: response.headers['content-type']?.toString().includes('json') ? JSON.parse(response.text) : response.text };
  };

  beforeAll(async () => {
    h = await startD1Harness();
    // The migration drizzle-kit would write for the schema.
    await h.service.exec(
      { account: 'default', id: 'app' },
      'CREATE TABLE `users` (`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL, `name` text NOT NULL, `email` text NOT NULL, `active` integer DEFAULT true NOT NULL, `profile` text);\n--> statement-breakpoint\nCREATE UNIQUE INDEX `users_email_unique` ON `users` (`email`);',
    );
    const bundle = await bundleWorker(entry);
    const def = { name: 'app', version: 'v1', main: bundle.main, modules: bundle.modules, bindings: { DB: d1Binding('app') } };
    h.server.runtime.deploy(def);
  });
  afterAll(() => h.close());

  it('inserts with RETURNING, selects, gets, updates and filters', async () => {
    expect(await call('POST', '/users', { name: 'Ada', email: 'ada@example.com', bio: 'maths' })).toEqual({
      status: 201,
      json: { id: 1, name: 'Ada', email: 'ada@example.com', active: true, profile: { bio: 'maths' } },
    });
    expect((await call('POST', '/users', { name: 'Bob', email: 'bob@example.com' })).status).toBe(201);
    expect((await call('GET', '/users')).json.map((u: { name: string }) => u.name)).toEqual(['Ada', 'Bob']);
    expect(await call('GET', '/users/2')).toEqual({ status: 200, json: { id: 2, name: 'Bob', email: 'bob@example.com', active: true, profile: null } });
    expect(await call('PATCH', '/users/2', { name: 'Robert', active: false })).toEqual({ status: 200, json: { id: 2, name: 'Robert', active: false } });
    expect((await call('GET', '/active')).json).toEqual(['Ada']);
    expect((await call('GET', '/users/9')).status).toBe(404);
  });

  it('runs db.batch() and surfaces constraint errors as D1 does', async () => {
    expect(await call('POST', '/batch')).toEqual({ status: 200, json: { inserted: [{ id: 3 }], counted: [{ n: 3 }] } });
    const duplicate = await call('POST', '/users', { name: 'Ada again', email: 'ada@example.com' });
    expect(duplicate.status).toBe(500);
    expect(JSON.stringify(duplicate.json)).toContain('UNIQUE constraint failed: users.email: SQLITE_CONSTRAINT');
  });
});
