// `cinder restart` (the built bin/cinder.js) against an admin API whose supervisor answers that
// there is no restart to begin (`restart: null`, the node is stopping): the user is told so, not
// shown a TypeError.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = join(fileURLToPath(new URL('../..', import.meta.url)), 'bin', 'cinder.js');
const posts: string[] = [];
const admin = createServer((req, res) => {
  posts.push(`${req.method} ${req.url}`);
  res.writeHead(req.method === 'POST' ? 202 : 200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ restart: null }));
});
let url = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => admin.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => admin.close(() => resolve())));

/** Run the CLI without blocking this process (it serves the admin API the CLI talks to). */
function cinder(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--no-node-snapshot', bin, ...args], { env: { ...process.env, CINDER_ADMIN_TOKEN: '', CINDER_TOKEN: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('cinder restart', () => {
  it('says the node is stopping when its supervisor has no restart to begin', async () => {
    const result = await cinder(['restart', '--url', url, '--token', 'operator']);
    expect(posts).toEqual(['POST /restart']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/the node is stopping \(its supervisor is shutting down\): no rolling restart was begun/);
    expect(result.stderr).not.toMatch(/TypeError/);
  });
});
