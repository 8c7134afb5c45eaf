// Durability: a D1 write acknowledged to the worker (its response has gone out) survives kill -9
// of `cinder serve` (the serving process itself, --no-supervisor). Writers keep inserting rows
// through a worker until the server is killed mid-stream; then the database file is opened and
// every acknowledged row must be there.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { multipart } from '../control/helpers.js';
import { startServeProcess } from '../helpers/serve-process.js';

const TOKEN = 'd1-durability-token-0123456789';
const dataDir = mkdtempSync(join(tmpdir(), 'cinder-d1-kill-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

const writer = `export default {
  async fetch(request, env) {
    const key = new URL(request.url).pathname.slice(1);
    await env.DB.prepare('INSERT INTO writes (k, v) VALUES (?, ?)').bind(key, 'value of ' + key).run();
    return new Response('stored ' + key);
  },
};`;

describe('D1 durability under kill -9', () => {
  it('keeps every acknowledged write', async () => {
    const { child: server, port, adminPort, exited } = await startServeProcess(dataDir, TOKEN, children);
    const admin = (method: string, path: string, init: { body?: BodyInit; json?: unknown } = {}) =>
      fetch(`http://127.0.0.1:${adminPort}${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
      });
    const created = await admin('POST', '/d1/durable/exec', { json: { sql: 'CREATE TABLE writes (k TEXT PRIMARY KEY, v TEXT NOT NULL);' } });
    expect(created.status, await created.text()).toBe(200);
    const deployed = await admin('PUT', '/workers/writer', { body: multipart({ main_module: 'index.js', bindings: [{ type: 'd1', name: 'DB', id: 'durable' }] }, { 'index.js': writer }) });
    expect(deployed.status, await deployed.text()).toBe(201);

    const dispatcher = new Agent({ connections: 16 });
    const acked: string[] = [];
    let next = 0;
    let killed = false;
    const write = async () => {
      while (!killed) {
        const key = `key-${String(next++).padStart(5, '0')}`;
        try {
          const response = await request(`http://127.0.0.1:${port}/${key}`, { method: 'POST', body: 'x', headers: { host: 'writer.example.com' }, dispatcher });
          const text = await response.body.text();
          if (response.statusCode === 200 && text === `stored ${key}`) acked.push(key);
          else if (!killed) throw new Error(`unexpected answer ${response.statusCode}: ${text}`);
          if (acked.length >= 150 && !killed) {
            killed = true;
            server.kill('SIGKILL');
          }
        } catch (error) {
          // Connection reset by the kill: not acknowledged, so not promised.
          if (!killed) throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, write));
    expect(await exited).toBe('SIGKILL');
    await dispatcher.close();

    // The executor process may still be closing the file after its server died: wait for its lock.
    const db = new DatabaseSync(join(dataDir, 'd1', 'default', 'durable.sqlite'), { timeout: 10_000 });
    try {
      const rows = new Map((db.prepare('SELECT k, v FROM writes').all() as { k: string; v: string }[]).map((r) => [r.k, r.v]));
      expect(acked.length).toBeGreaterThanOrEqual(150);
      expect(acked.filter((k) => rows.get(k) !== `value of ${k}`)).toEqual([]);
    } finally {
      db.close();
    }
  });
});
