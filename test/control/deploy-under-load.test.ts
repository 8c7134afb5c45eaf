// Deploying is atomic: under steady load no request fails, requests in flight finish on the
// version they started on, and every request that starts after an upload returned gets the new
// version (or a newer one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { startCinder, type TestCinder } from './helpers.js';

let cinder: TestCinder;
beforeAll(async () => {
  cinder = await startCinder();
});
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

const versionWorker = (n: number, delayMs = 0) =>
  `export default { async fetch() {
    ${delayMs ? `await new Promise((r) => setTimeout(r, ${delayMs}));` : ''}
    return new Response('v${n}');
  } };`;

describe('deploy under load', () => {
  it('fails no request while five versions are deployed', async () => {
    expect((await cinder.admin('PUT', '/workers/busy', { body: versionWorker(1) })).status).toBe(201);
    const agent = new Agent({ connections: 16 });
    const results: { started: number; status: number; text: string; error?: string }[] = [];
    let running = true;

    const client = async () => {
      while (running) {
        const started = performance.now();
        try {
          const res = await request(`${cinder.server.url}/`, { headers: { host: 'busy.example.com' }, dispatcher: agent });
          results.push({ started, status: res.statusCode, text: await res.body.text() });
        } catch (error) {
          results.push({ started, status: 0, text: '', error: (error as Error).message });
        }
      }
    };
    const clients = Array.from({ length: 16 }, client);

    // deployed[n] = when the upload of version n had been acknowledged
    const deployed: number[] = [];
    await new Promise((r) => setTimeout(r, 200));
    for (let n = 2; n <= 6; n++) {
      const res = await cinder.admin('PUT', '/workers/busy', { body: versionWorker(n) });
      expect(res.status).toBe(201);
      deployed[n] = performance.now();
      // Each version serves some requests before the next replaces it (on a loaded machine a
      // fixed pause could pass with none answered by it).
      const deadline = performance.now() + 20_000;
      while (!results.some((r) => r.text === `v${n}`) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 50));
    }
    running = false;
    await Promise.all(clients);
    await agent.close();

    const failed = results.filter((r) => r.status !== 200);
    expect(failed, JSON.stringify(failed.slice(0, 3))).toEqual([]);
    expect(results.length).toBeGreaterThan(200);
    const seen = new Set(results.map((r) => r.text));
    expect([...seen].sort()).toEqual(['v1', 'v2', 'v3', 'v4', 'v5', 'v6']);
    for (let n = 2; n <= 6; n++) {
      const stale = results.filter((r) => r.started > deployed[n] && Number(r.text.slice(1)) < n);
      expect(stale, `requests started after v${n} was deployed but answered by an older version`).toEqual([]);
    }
  });

  it('lets a request in flight finish on the old version while new requests get the new one', async () => {
    expect((await cinder.admin('PUT', '/workers/slow', { body: versionWorker(1, 400) })).status).toBe(201);
    expect((await cinder.get('slow.example.com')).text).toBe('v1'); // warm

    const inFlight = cinder.get('slow.example.com');
    await new Promise((r) => setTimeout(r, 100));
    expect((await cinder.admin('PUT', '/workers/slow', { body: versionWorker(2) })).status).toBe(201);
    const fresh = await cinder.get('slow.example.com');
    expect(fresh.text).toBe('v2');
    const old = await inFlight;
    expect(old.status).toBe(200);
    expect(old.text).toBe('v1');
  });

  it('lets a request in flight finish when its worker is rolled back or deleted', async () => {
    expect((await cinder.admin('PUT', '/workers/slow', { body: versionWorker(3, 300) })).status).toBe(201);
    const rolling = cinder.get('slow.example.com');
    await new Promise((r) => setTimeout(r, 100));
    expect((await cinder.admin('POST', '/workers/slow/rollback')).status).toBe(200);
    expect((await cinder.get('slow.example.com')).text).toBe('v2');
    expect((await rolling).text).toBe('v3');

    expect((await cinder.admin('POST', '/workers/slow/rollback', { json: { version: 3 } })).status).toBe(200);
    const deleting = cinder.get('slow.example.com');
    await new Promise((r) => setTimeout(r, 100));
    expect((await cinder.admin('DELETE', '/workers/slow')).status).toBe(200);
    expect((await cinder.get('slow.example.com')).status).toBe(404);
    const last = await deleting;
    expect(last.status).toBe(200);
    expect(last.text).toBe('v3');
  });
});
