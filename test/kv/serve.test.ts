// KV inside a real `cinder serve`: a worker uploaded through the admin API with a kv_namespace
// binding, KV administered under /kv (behind the admin token), and state that outlives a
// restart of the whole server.
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { kvServeExtension } from '../../src/app/kv.js';
import { multipart, startCinder, tempDataDir } from '../control/helpers.js';

const counter = readFileSync(fileURLToPath(new URL('../../examples/kv-counter.js', import.meta.url)), 'utf8');

describe('KV in cinder serve', () => {
  const dataDir = tempDataDir();
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('serves the counter example, administers its namespace, and keeps it across a restart', async () => {
    let cinder = await startCinder({ dataDir, extensions: [kvServeExtension()] });
    try {
      const upload = await cinder.admin('PUT', '/workers/counter', {
        body: multipart({ main_module: 'index.js', bindings: [{ type: 'kv_namespace', name: 'COUNTER', namespace_id: 'visits' }] }, { 'index.js': counter }),
      });
      expect(upload.status, upload.text).toBe(201);
      expect(JSON.parse((await cinder.get('counter.example', '/a')).text)).toEqual({ path: '/a', count: 1 });
      expect(JSON.parse((await cinder.get('counter.example', '/a')).text)).toEqual({ path: '/a', count: 2 });

      const value = await cinder.admin('GET', `/kv/visits/values/${encodeURIComponent('count:/a')}`);
      expect([value.status, value.text]).toEqual([200, '2']);
      expect((await cinder.admin('PUT', `/kv/visits/values/${encodeURIComponent('count:/b')}`, { body: '41' })).status).toBe(200);
      // Behind the admin token like every admin route.
      expect([401, 403]).toContain((await cinder.admin('GET', '/kv/visits/keys', { headers: { authorization: 'Bearer wrong' } })).status);
    } finally {
      await cinder.close();
    }

    cinder = await startCinder({ dataDir, extensions: [kvServeExtension()] });
    try {
      expect(JSON.parse((await cinder.get('counter.example', '/a')).text)).toEqual({ path: '/a', count: 3 });
      expect(JSON.parse((await cinder.get('counter.example', '/b')).text)).toEqual({ path: '/b', count: 42 });
      const keys = await cinder.admin('GET', '/kv/visits/keys');
      expect(keys.body).toEqual({ keys: [{ name: 'count:/a' }, { name: 'count:/b' }], list_complete: true });
    } finally {
      await cinder.close();
    }
  });
});
