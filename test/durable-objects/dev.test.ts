// A Durable Objects project as a user runs it: wrangler.toml with durable_objects.bindings and
// [[migrations]], a TypeScript worker, the real `cinder dev` CLI in a child process. Objects keep
// their state under the project's .cinder/ across restarts of `cinder dev`; a project whose class
// has no migration is refused with the fix named.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cinder-do-dev-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function start(project: string): { child: ChildProcess; url: Promise<string>; exit: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, [bin, 'dev', project, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir() });
  children.push(child);
  let stderr = '';
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
  const url = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
      const match = /on (http:\/\/[\d.:]+)/.exec(stderr);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`cinder dev exited with ${code}: ${stderr}`)));
  });
  url.catch(() => {});
  return { child, url, exit };
}

import { request as undiciRequest } from 'undici';
const request = (url: string) => undiciRequest(url);

async function post(url: string): Promise<string> {
  const res = await undiciRequest(url, { method: 'POST' });
  return res.body.text();
}

function project(name: string, toml: string): string {
  const root = join(dir, name);
  mkdirSync(join(root, 'src'), { recursive: true });
  writeFileSync(join(root, 'wrangler.toml'), toml);
  writeFileSync(
    join(root, 'src/index.ts'),
    `interface Env { COUNTER: DurableObjectNamespace }
declare const DurableObjectNamespace: any; type DurableObjectNamespace = any; type DurableObjectState = any;
export class Counter {
  constructor(private state: DurableObjectState, private env: Env) {}
  async fetch(request: Request): Promise<Response> {
    let value: number = (await this.state.storage.get('value')) ?? 0;
    if (request.method === 'POST') await this.state.storage.put('value', ++value);
    return new Response(String(value));
  }
}
export default {
  fetch(request: Request, env: Env): Promise<Response> {
    return env.COUNTER.get(env.COUNTER.idFromName('shared')).fetch(request);
  },
};
`,
  );
  return root;
}

describe('cinder dev with Durable Objects', () => {
  it('serves a wrangler project with a Durable Object, its state kept under .cinder/ across restarts', async () => {
    const root = project(
      'counter',
      `name = "counter"
main = "src/index.ts"
compatibility_date = "2025-01-01"

# a first Durable Object event uses ~17 ms of CPU here, of the 50 ms default: room for a slower CI
[limits]
cpu_ms = 1000

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Counter"]
`,
    );
    const first = start(root);
    const url = await first.url;
    expect(await post(url)).toBe('1');
    expect(await post(url)).toBe('2');
    first.child.kill('SIGTERM');
    await first.exit;
    expect(existsSync(join(root, '.cinder', 'state', 'durable-objects', 'index.sqlite'))).toBe(true);

    const second = start(root);
    expect(await post(await second.url)).toBe('3');
    second.child.kill('SIGTERM');
    await second.exit;
  });

  it('refuses a class bound without a migration, naming the fix', async () => {
    const root = project(
      'unmigrated',
      `name = "unmigrated"
main = "src/index.ts"

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"
`,
    );
    const run = start(root);
    let output = '';
    run.child.stderr!.on('data', (chunk) => (output += chunk));
    run.child.stdout!.on('data', (chunk) => (output += chunk));
    for (let i = 0; i < 300 && !/has no migration/.test(output); i++) await new Promise((r) => setTimeout(r, 50));
    // The dev server keeps running and watching (a fix is picked up), and says what to fix.
    expect(output).toMatch(/binding COUNTER: class Counter has no migration creating it; add one, e\.g\. \[\[migrations\]\] tag = \\?"v1\\?" new_sqlite_classes = \[\\?"Counter\\?"\]/);
    expect((await request(await run.url)).statusCode).not.toBe(200);
    run.child.kill('SIGTERM');
    await run.exit;
  });
});
