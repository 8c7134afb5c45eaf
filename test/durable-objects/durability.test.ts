// Nothing acknowledged is lost: `cinder serve` (a subprocess, the serving process itself) answers
// Durable Object writes until it is killed with SIGKILL mid-stream; after a restart on the same
// data directory every acknowledged write is there. The worker does not await its put(): the
// output gate must hold the response until the write is durable. SQL writes are synchronous.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { multipart } from '../control/helpers.js';
import { startServeProcess } from '../helpers/serve-process.js';

const TOKEN = 'durable-objects-durability-token';
const OBJECTS = 6;

const dataDir = mkdtempSync(join(tmpdir(), 'cinder-do-kill-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

const serve = () => startServeProcess(dataDir, TOKEN, children);

const WORKER = `
export class Ledger {
  constructor(ctx) {
    this.ctx = ctx;
    ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT)');
  }
  async fetch(request) {
    const url = new URL(request.url);
    if (request.method === 'POST') {
      const key = url.searchParams.get('key');
      this.ctx.storage.put(key, { value: 'kv ' + key });                  // not awaited: the output gate waits
      this.ctx.storage.sql.exec('INSERT INTO entries VALUES (?, ?)', key, 'sql ' + key);
      return new Response('stored ' + key);
    }
    const kv = Object.fromEntries([...(await this.ctx.storage.list())].map(([k, v]) => [k, v.value]));
    const sql = Object.fromEntries(this.ctx.storage.sql.exec('SELECT key, value FROM entries').raw());
    return Response.json({ kv, sql });
  }
}
export default { fetch(request, env) { return env.LEDGER.getByName(new URL(request.url).searchParams.get('object')).fetch(request); } };
`;

describe('Durable Objects and kill -9', () => {
  it('keeps every acknowledged write after SIGKILL of cinder serve', async () => {
    const first = await serve();
    const deployed = await fetch(`http://127.0.0.1:${first.adminPort}/workers/ledger`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}` },
      // (a first Durable Object event uses ~16 ms of CPU here, of the 50 ms default: room for CI)
      body: multipart({ main_module: 'index.js', bindings: [{ type: 'durable_object_namespace', name: 'LEDGER', class_name: 'Ledger' }], migrations: { new_tag: 'v1', new_sqlite_classes: ['Ledger'] }, limits: { cpu_ms: 1000 } }, { 'index.js': WORKER }),
    });
    expect(deployed.status, await deployed.text()).toBe(201);

    const dispatcher = new Agent({ connections: 16 });
    const acked = new Map<string, string[]>();
    let next = 0;
    let count = 0;
    let killed = false;
    const writer = async () => {
      while (!killed) {
        const n = next++;
        const object = `o${n % OBJECTS}`;
        const key = `k${String(n).padStart(5, '0')}`;
        try {
          const res = await request(`http://127.0.0.1:${first.port}/?object=${object}&key=${key}`, { method: 'POST', headers: { host: 'ledger.example.com' }, dispatcher });
          const text = await res.body.text();
          if (res.statusCode === 200 && text === `stored ${key}`) {
            acked.set(object, [...(acked.get(object) ?? []), key]);
            if (++count >= 150 && !killed) {
              killed = true;
              first.child.kill('SIGKILL');
            }
          }
        } catch {
          // reset by the kill: not acknowledged, not promised
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, writer));
    expect(await first.exited).toBe('SIGKILL');
    await dispatcher.close();
    expect(count).toBeGreaterThanOrEqual(150);

    const second = await serve();
    for (const [object, keys] of acked) {
      const res = await request(`http://127.0.0.1:${second.port}/?object=${object}`, { headers: { host: 'ledger.example.com' } });
      const body = JSON.parse(await res.body.text()) as { kv: Record<string, string>; sql: Record<string, string> };
      expect(keys.filter((k) => body.kv[k] !== `kv ${k}`)).toEqual([]);
      expect(keys.filter((k) => body.sql[k] !== `sql ${k}`)).toEqual([]);
    }
    second.child.kill('SIGTERM');
    await second.exited;
  }, 60_000);
});
