// Durability on SQLite: a put acknowledged to the guest (the worker's response has gone out)
// survives kill -9 of the server process. The server runs in a child process that keeps
// answering writes until it is killed mid-stream; then the file is reopened and every
// acknowledged key must be there, byte for byte.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { SqliteBackend } from '../../bindings/kv/index.js';
import { kvDatabasePath } from '../../bindings/kv/index.js';

const child = fileURLToPath(new URL('./durability-child.mjs', import.meta.url));

describe('KV durability on SQLite', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'cinder-kv-durable-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps every acknowledged put after kill -9', async () => {
    const server = spawn(process.execPath, ['--no-node-snapshot', child, dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    server.stderr!.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => server.once('exit', (_code, signal) => resolve(signal)));
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      server.stdout!.on('data', (chunk) => {
        out += chunk;
        const match = /port (\d+)/.exec(out);
        if (match) resolve(Number(match[1]));
      });
      server.once('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${stderr}`)));
    });

    const dispatcher = new Agent({ connections: 16 });
    const acked: string[] = [];
    let next = 0;
    let killed = false;
    // 16 writers in parallel; after 150 acknowledgements, kill -9 while writes are in flight.
    const writer = async () => {
      while (!killed) {
        const key = `key-${String(next++).padStart(5, '0')}`;
        try {
          const response = await request(`http://127.0.0.1:${port}/${key}`, { method: 'POST', body: 'x', dispatcher });
          const text = await response.body.text();
          if (response.statusCode === 200 && text === `stored ${key}`) acked.push(key);
          if (acked.length >= 150 && !killed) {
            killed = true;
            server.kill('SIGKILL');
          }
        } catch {
          // Connection reset by the kill: not acknowledged, so not promised.
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, writer));
    expect(await exited).toBe('SIGKILL');
    await dispatcher.close();

    const backend = new SqliteBackend({ path: kvDatabasePath(dataDir) });
    try {
      const entries = await backend.getMany('durable', acked, Date.now());
      const missing = acked.filter((_, i) => entries[i] === null);
      expect(missing).toEqual([]);
      entries.forEach((entry, i) => {
        expect(entry!.value.toString()).toBe(`value of ${acked[i]}`);
        expect(JSON.parse(entry!.metadata!)).toEqual({ key: acked[i] });
      });
      expect(acked.length).toBeGreaterThanOrEqual(150);
    } finally {
      await backend.close();
    }
  });
});
