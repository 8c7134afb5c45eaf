// `cinder dev` as a user runs it: the real CLI in a child process, a real port, a file on disk
// that changes under it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));

async function waitForUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (chunk) => {
      err += chunk;
      const match = /on (http:\/\/[\d.:]+)/.exec(err);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`cinder dev exited with ${code}: ${err}`)));
  });
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await request(url);
  return { status: res.statusCode, text: await res.body.text() };
}

describe('cinder dev', () => {
  let child: ChildProcess;
  let url: string;
  const dir = mkdtempSync(join(tmpdir(), 'cinder-dev-'));
  const file = join(dir, 'worker.ts');

  beforeAll(async () => {
    writeFileSync(file, `const greeting: string = 'version one';\nexport default { fetch(): Response { return new Response(greeting) } };\n`);
    child = spawn(process.execPath, [bin, 'dev', file, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    url = await waitForUrl(child);
  });
  afterAll(() => {
    child.kill('SIGTERM');
  });

  it('serves a TypeScript worker', async () => {
    expect(await get(url)).toEqual({ status: 200, text: 'version one' });
  });

  it('reloads the worker when its file changes', async () => {
    writeFileSync(file, `export default { fetch(): Response { return new Response('version two') } };\n`);
    let text = '';
    for (let i = 0; i < 100 && text !== 'version two'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      text = (await get(url)).text;
    }
    expect(text).toBe('version two');
  });

  it('keeps serving the last good version when an edit does not compile', async () => {
    writeFileSync(file, `export default { fetch( { return new Response('broken') } };\n`);
    await new Promise((r) => setTimeout(r, 400));
    expect(await get(url)).toEqual({ status: 200, text: 'version two' });
  });
});

describe('npm start', () => {
  it('serves the examples on the default worker', async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const child = spawn(process.execPath, [bin, 'dev', 'examples', '--default', 'hello', '--port', '0'], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const base = await waitForUrl(child);
      const res = await get(`${base}/from-test`);
      expect(res.status).toBe(200);
      expect(res.text).toContain('Hello from Cinder');
      expect(res.text).toContain('/from-test');
    } finally {
      child.kill('SIGTERM');
    }
  });
});
