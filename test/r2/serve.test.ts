// R2 on `cinder serve` as a user runs it: a worker bound through upload metadata stores request
// bodies; kill -9 of the server in the middle of writes loses no acknowledged object (checked
// byte for byte after a restart, through the admin API); the `cinder r2 object` CLI reads and
// writes the same buckets.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { multipart } from '../control/helpers.js';
import { startServeProcess } from '../helpers/serve-process.js';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
const TOKEN = 'r2-serve-token-0123456789abcdef';
const dataDir = mkdtempSync(join(tmpdir(), 'cinder-r2-serve-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

async function serve() {
  const { child, port, adminPort, exited } = await startServeProcess(dataDir, TOKEN, children);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const admin = (method: string, path: string, body?: BodyInit) => fetch(`${adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` }, body });
  return { child, port, adminUrl, admin, exited };
}

const writer = `export default {
  async fetch(request, env) {
    const key = new URL(request.url).pathname.slice(1);
    const object = await env.FILES.put(key, request.body, { httpMetadata: { contentType: 'application/octet-stream' } });
    return new Response('stored ' + key + ' ' + object.etag);
  },
};`;

function cinder(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: dataDir, env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}

describe('R2 on cinder serve', () => {
  const bodies = new Map<string, Buffer>();

  it('keeps every acknowledged object through kill -9 and a restart', async () => {
    const first = await serve();
    const deployed = await first.admin('PUT', '/workers/store', multipart({ main_module: 'index.js', bindings: [{ type: 'r2_bucket', name: 'FILES', bucket_name: 'uploads' }] }, { 'index.js': writer }));
    expect(deployed.status, await deployed.text()).toBe(201);

    const dispatcher = new Agent({ connections: 12 });
    const acked: string[] = [];
    let next = 0;
    let killed = false;
    const write = async () => {
      while (!killed) {
        const key = `obj-${String(next++).padStart(5, '0')}`;
        const body = randomBytes(48 * 1024 + (next % 7) * 1000);
        bodies.set(key, body);
        try {
          const response = await request(`http://127.0.0.1:${first.port}/${key}`, { method: 'PUT', body, headers: { host: 'store.example.com' }, dispatcher });
          const text = await response.body.text();
          if (response.statusCode === 200 && text === `stored ${key} ${createHash('md5').update(body).digest('hex')}`) acked.push(key);
          else if (!killed) throw new Error(`unexpected answer ${response.statusCode}: ${text}`);
          if (acked.length >= 80 && !killed) {
            killed = true;
            first.child.kill('SIGKILL');
          }
        } catch (error) {
          if (!killed) throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: 12 }, write));
    expect(await first.exited).toBe('SIGKILL');
    await dispatcher.close();

    const second = await serve();
    try {
      const missing: string[] = [];
      for (const key of acked) {
        const response = await second.admin('GET', `/r2/uploads/objects/${key}`);
        const bytes = Buffer.from(await response.arrayBuffer());
        if (response.status !== 200 || !bytes.equals(bodies.get(key)!)) missing.push(key);
      }
      expect(missing).toEqual([]);
      expect(acked.length).toBeGreaterThanOrEqual(80);

      // The CLI on the same server.
      const env = { CINDER_URL: second.adminUrl, CINDER_TOKEN: TOKEN };
      writeFileSync(join(dataDir, 'note.txt'), 'from the cli');
      const put = await cinder(['r2', 'object', 'put', 'uploads/notes/cli.txt', '--file', 'note.txt', '--content-type', 'text/plain'], env);
      expect(put.stderr).toBe(`cinder r2: stored uploads/notes/cli.txt (etag ${createHash('md5').update('from the cli').digest('hex')})\n`);
      const got = await cinder(['r2', 'object', 'get', 'uploads/notes/cli.txt'], env);
      expect(got.stdout.toString()).toBe('from the cli');
      const fromWorkerKey = await cinder(['r2', 'object', 'get', `uploads/${acked[0]}`, '--file', 'copy.bin'], env);
      expect(fromWorkerKey.code, fromWorkerKey.stderr).toBe(0);
      expect(readFileSync(join(dataDir, 'copy.bin')).equals(bodies.get(acked[0])!)).toBe(true);
      const listed = await cinder(['r2', 'object', 'list', 'uploads', '--delimiter', '/'], env);
      const lines = listed.stdout.toString().split('\n');
      expect(lines[0].split(/\s+/)).toEqual(['KEY', 'SIZE', 'ETAG']);
      expect(lines[1]).toBe('notes/');
      // header, notes/, the objects (some written but unanswered when the server died), final newline
      expect(lines.length).toBeGreaterThanOrEqual(acked.length + 3);
      expect((await cinder(['r2', 'object', 'delete', 'uploads/notes/cli.txt'], env)).code).toBe(0);
      const gone = await cinder(['r2', 'object', 'get', 'uploads/notes/cli.txt'], env);
      expect(gone.code).toBe(1);
      expect(gone.stderr).toBe('cinder r2: no such object\n');
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});
