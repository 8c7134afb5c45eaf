// nodejs_compat through `cinder dev` as a user runs it: a wrangler.toml with the flag and a
// compatibility date, a worker importing node:* modules and reading the Buffer and process globals
// (process.env at its top level too), bundled by the CLI; and a Node module Cinder lacks refused
// at build, by name.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));

function start(dir: string): { child: ChildProcess; url: Promise<string>; stderr: () => string } {
  // Logs (a build error too) go to stdout; the address line to stderr.
  const child = spawn(process.execPath, [bin, 'dev', join(dir, 'wrangler.toml'), '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  const url = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk) => {
      err += chunk;
      const match = /on (http:\/\/[\d.:]+)/.exec(err);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`cinder dev exited with ${code}: ${err}`)));
  });
  return { child, url, stderr: () => err + out };
}

describe('nodejs_compat through cinder dev', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cinder-node-'));
  let dev: ReturnType<typeof start>;
  beforeAll(async () => {
    writeFileSync(
      join(dir, 'wrangler.toml'),
      `name = "nodey"\nmain = "worker.ts"\ncompatibility_date = "2025-06-01"\ncompatibility_flags = ["nodejs_compat"]\n\n[vars]\nAPI_URL = "https://api.example"\n`,
    );
    writeFileSync(
      join(dir, 'worker.ts'),
      `import { createHash } from 'node:crypto';
      import { EventEmitter } from 'events';
      import { AsyncLocalStorage } from 'node:async_hooks';
      const apiAtStartup: string | undefined = process.env.API_URL;
      const als = new AsyncLocalStorage<string>();
      export default { async fetch(): Promise<Response> {
        return als.run('ctx', async () => {
          await new Promise((r) => setTimeout(r, 1));
          const e = new EventEmitter(); let heard = ''; e.on('x', (v: string) => (heard = v)); e.emit('x', 'yes');
          return Response.json({ apiAtStartup, hash: createHash('sha256').update(Buffer.from('cinder')).digest('hex'), heard, store: als.getStore() });
        });
      } };\n`,
    );
    dev = start(dir);
    await dev.url;
  });
  afterAll(() => dev.child.kill('SIGTERM'));

  it('serves the worker: node:* imports, the Buffer and process globals, process.env at the top level, AsyncLocalStorage', async () => {
    const res = await request(await dev.url);
    const text = await res.body.text();
    expect(res.statusCode, text).toBe(200);
    expect(JSON.parse(text)).toEqual({ apiAtStartup: 'https://api.example', hash: createHash('sha256').update('cinder').digest('hex'), heard: 'yes', store: 'ctx' });
  });

  it('refuses a Node module Cinder does not offer at build, naming it', async () => {
    const other = mkdtempSync(join(tmpdir(), 'cinder-node-fs-'));
    writeFileSync(join(other, 'wrangler.toml'), `name = "fsy"\nmain = "worker.js"\ncompatibility_date = "2025-06-01"\ncompatibility_flags = ["nodejs_compat"]\n`);
    writeFileSync(join(other, 'worker.js'), `import { readFileSync } from 'node:fs';\nexport default { fetch() { return new Response(readFileSync('/etc/hostname')) } };\n`);
    const refused = start(other);
    // cinder dev reports the build error and waits for an edit; it must not serve the worker.
    refused.url.catch(() => undefined);
    let said = '';
    for (let i = 0; i < 200 && !/node:fs is not/.test(said); i++) {
      await new Promise((r) => setTimeout(r, 100));
      said = refused.stderr();
    }
    refused.child.kill('SIGTERM');
    expect(said).toMatch(/node:fs is not available on Cinder/);
  }, 30_000);
});
