// The CLI as a user runs it (the built bin/cinder.js): `cinder serve`, `cinder deploy` of wrangler
// projects (TOML with a multi-file TypeScript entry, JSONC) and of a plain file, reaching each
// worker by host and by route, `cinder workers ...`, then a restart of `cinder serve` on the same
// --data that finds all of it still there.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { tempDataDir } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'bin', 'cinder.js');
const work = tempDataDir();
const dataDir = join(work, 'data');

interface Serve {
  child: ChildProcess;
  url: string;
  adminUrl: string;
  stderr: string;
  stdout: string;
  token?: string;
}

async function startServe(): Promise<Serve> {
  // No CINDER_ADMIN_TOKEN: the server generates one on first start.
  const env = { ...process.env, CINDER_ADMIN_TOKEN: '', CINDER_TOKEN: '', CINDER_URL: '' };
  const child = spawn(process.execPath, ['--no-node-snapshot', bin, 'serve', '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--data', dataDir], { env, cwd: work });
  const serve: Serve = { child, url: '', adminUrl: '', stderr: '', stdout: '' };
  child.stdout!.on('data', (chunk) => {
    serve.stdout += chunk;
    logStream += chunk;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cinder serve did not start:\n${serve.stderr}`)), 20_000);
    child.stderr!.on('data', (chunk) => {
      serve.stderr += chunk;
      const urls = /data plane on (\S+), admin API on (\S+) /.exec(serve.stderr);
      if (urls && /admin token (read from|from CINDER)|generated an admin token[^\n]*:\n\s+(\S+)\n/.test(serve.stderr)) {
        serve.url = urls[1];
        serve.adminUrl = urls[2];
        serve.token = /generated an admin token[^\n]*:\n\s+(\S+)\n/.exec(serve.stderr)?.[1];
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`cinder serve exited (${code}):\n${serve.stderr}`)));
  });
  return serve;
}

async function stopServe(serve: Serve): Promise<number | null> {
  if (serve.child.exitCode !== null) return serve.child.exitCode;
  const exited = new Promise<number | null>((resolve) => serve.child.once('exit', (code) => resolve(code)));
  serve.child.kill('SIGTERM');
  return exited;
}

let serve: Serve;
let token: string;
/** stdout (the JSON log stream) of every `cinder serve` started here */
let logStream = '';

function cinder(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--no-node-snapshot', bin, ...args], {
    cwd: work,
    encoding: 'utf8',
    env: { ...process.env, CINDER_ADMIN_TOKEN: '', CINDER_URL: serve.adminUrl, CINDER_TOKEN: token, ...env },
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function get(host: string, path = '/'): Promise<{ status: number; text: string }> {
  const res = await request(`${serve.url}${path}`, { headers: { host } });
  return { status: res.statusCode, text: await res.body.text() };
}

function write(path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

beforeAll(async () => {
  // A wrangler.toml project with a TypeScript entry that imports other TypeScript files.
  write(
    join(work, 'greeter', 'wrangler.toml'),
    `name = "greeter"
main = "src/index.ts"
compatibility_date = "2025-01-01"
routes = ["greet.example.com/*", { pattern = "example.com/hello/*", zone_name = "example.com" }]

[vars]
GREETING = "Hello"
SETTINGS = { loud = true }

[triggers]
crons = ["*/10 * * * *"]

[limits]
cpu_ms = 100

[env.staging]
routes = ["staging.example.com/*"]
vars = { GREETING = "Hi (staging)", SETTINGS = { loud = true } }
`,
  );
  write(
    join(work, 'greeter', 'src', 'index.ts'),
    `import { greet } from './greet';
import type { Env } from './types';
export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    return new Response(greet(env.GREETING, env.SETTINGS.loud) + ' (v1)');
  },
} satisfies ExportedHandler<Env>;
`,
  );
  write(join(work, 'greeter', 'src', 'greet.ts'), `export function greet(greeting: string, loud: boolean): string {\n  const text: string = greeting + ', edge';\n  return loud ? text.toUpperCase() + '!' : text;\n}\n`);
  write(join(work, 'greeter', 'src', 'types.ts'), `export interface Env { GREETING: string; SETTINGS: { loud: boolean } }\ndeclare global { type ExportedHandler<E> = { fetch(request: Request, env: E): Promise<Response> } }\n`);
  // A wrangler.jsonc project (comments, trailing commas) with a service binding to the first.
  write(
    join(work, 'front', 'wrangler.jsonc'),
    `{
  // the front door
  "name": "front",
  "main": "./index.js",
  "routes": [{ "pattern": "www.example.com/*" }, ],
  "services": [{ "binding": "GREETER", "service": "greeter" }], /* in-process */
}`,
  );
  write(join(work, 'front', 'index.js'), `export default { async fetch(request, env) { const r = await env.GREETER.fetch(request); return new Response('front -> ' + await r.text()); } };\n`);
  // A bare file deployed with --name.
  write(join(work, 'misc', 'ping.js'), `addEventListener('fetch', (event) => event.respondWith(new Response('pong')));\n`);

  serve = await startServe();
  expect(serve.token, serve.stderr).toMatch(/^[\w-]{32,}$/);
  token = serve.token!;
});

afterAll(async () => {
  if (serve) await stopServe(serve);
  rmSync(work, { recursive: true, force: true });
});

describe('cinder deploy', { timeout: 90_000 }, () => {
  it('deploys a wrangler.toml project with a multi-file TypeScript entry', async () => {
    const out = cinder(['deploy', join(work, 'greeter')]);
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/^Deployed greeter: version 1 \([0-9a-f-]{36}\), \d+ B\n/);
    expect(out.stdout).toContain('routes:   example.com/hello/*, greet.example.com/*');
    expect(out.stdout).toContain('crons:    */10 * * * *');
    expect(out.stdout).toContain('bindings: GREETING (plain_text), SETTINGS (json)');
    expect(await get('greet.example.com')).toEqual({ status: 200, text: 'HELLO, EDGE! (v1)' });
  });

  it('deploys a wrangler.jsonc project with a service binding', async () => {
    const out = cinder(['deploy', join(work, 'front', 'wrangler.jsonc')]);
    expect(out.stderr).toBe('');
    expect(out.stdout).toMatch(/^Deployed front: version 1/);
    expect((await get('www.example.com')).text).toBe('front -> HELLO, EDGE! (v1)');
  });

  it('deploys a single file with --name', async () => {
    const out = cinder(['deploy', join(work, 'misc', 'ping.js'), '--name', 'ping']);
    expect(out.stderr).toBe('');
    expect(out.stdout).toMatch(/^Deployed ping: version 1/);
    expect((await get('ping.example.net')).text).toBe('pong');
  });

  it('deploys an [env.*] section as <name>-<env>', async () => {
    const out = cinder(['deploy', join(work, 'greeter'), '--env', 'staging']);
    expect(out.stderr).toBe('');
    expect(out.stdout).toMatch(/^Deployed greeter-staging: version 1/);
    expect(out.stdout).toContain('routes:   staging.example.com/*');
    expect((await get('staging.example.com')).text).toBe('HI (STAGING), EDGE! (v1)');
  });

  it('deploys the gateway example (TypeScript, route, service binding) in front of hello', async () => {
    expect(cinder(['deploy', join(root, 'examples', 'hello.js'), '--name', 'hello']).stdout).toMatch(/^Deployed hello: version 1/);
    const out = cinder(['deploy', join(root, 'examples', 'gateway')]);
    expect(out.stderr).toBe('');
    expect(out.stdout).toContain('routes:   example.com/api/*');
    const res = await request(`${serve.url}/api/greet`, { headers: { host: 'example.com' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-served-by']).toBe('gateway');
    expect(await res.body.text()).toBe('Hello from Cinder! You asked for /api/greet\n');
  });

  it('reaches every worker by host and by route', async () => {
    expect((await get('greeter.anything.test')).text).toBe('HELLO, EDGE! (v1)');
    expect((await get('example.com', '/hello/there')).text).toBe('HELLO, EDGE! (v1)');
    expect((await get('front.localhost')).text).toBe('front -> HELLO, EDGE! (v1)');
    expect((await get('ping.localhost')).text).toBe('pong');
    expect((await get('example.com', '/other')).status).toBe(404);
    expect((await get('example.com', '/api/anything')).text).toBe('Hello from Cinder! You asked for /api/anything\n');
  });

  it('says what is wrong, and what to do', () => {
    const noToken = cinder(['workers', 'list'], { CINDER_TOKEN: '' });
    expect(noToken.status).toBe(1);
    expect(noToken.stderr).toMatch(/no admin token: pass --token or set CINDER_TOKEN/);
    const badToken = cinder(['workers', 'list', '--token', 'not-the-token']);
    expect(badToken.stderr).toMatch(/refused the token/);
    const noServer = cinder(['workers', 'list', '--url', 'http://127.0.0.1:9']);
    expect(noServer.stderr).toMatch(/cannot reach the Cinder admin API at http:\/\/127\.0\.0\.1:9 .*Is `cinder serve` running\?/);
    const noConfig = cinder(['deploy', join(work, 'misc')]);
    expect(noConfig.stderr).toMatch(/no wrangler\.toml, wrangler\.jsonc, wrangler\.json in .*misc\. Deploy a worker file instead/);
    const badName = cinder(['deploy', join(work, 'misc', 'ping.js'), '--name', 'Ping_Pong']);
    expect(badName.stderr).toMatch(/invalid worker name "Ping_Pong"/);
    write(join(work, 'broken', 'wrangler.toml'), 'name = "broken"\nmain = "index.js"\n');
    write(join(work, 'broken', 'index.js'), 'export default { fetch() { return new Response("x") } };\nthrow new Error("bad top level");\n');
    const broken = cinder(['deploy', join(work, 'broken')]);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/the script failed to load: Error: bad top level/);
    write(join(work, 'badcron', 'wrangler.toml'), 'name = "badcron"\nmain = "index.js"\n[triggers]\ncrons = ["every minute"]\n');
    write(join(work, 'badcron', 'index.js'), 'export default {};\n');
    expect(cinder(['deploy', join(work, 'badcron')]).stderr).toMatch(/invalid cron "every minute"/);
    write(join(work, 'nomain', 'wrangler.json'), '{"name": "nomain"}');
    expect(cinder(['deploy', join(work, 'nomain')]).stderr).toMatch(/has no main: add main = "src\/index\.ts"/);
    write(join(work, 'badtoml', 'wrangler.toml'), 'name = \n');
    expect(cinder(['deploy', join(work, 'badtoml')]).stderr).toMatch(/wrangler\.toml is not valid TOML/);
    const conflict = cinder(['deploy', join(work, 'misc', 'ping.js'), '--name', 'greeter-staging', '--dry-run']);
    expect(conflict.status).toBe(0);
    expect(conflict.stdout).toMatch(/^Would deploy greeter-staging: ping\.js \(service-worker script\)/);
  });
});

describe('cinder workers', { timeout: 90_000 }, () => {
  it('lists workers', () => {
    const out = cinder(['workers', 'list']);
    expect(out.status).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+VERSION\s+SIZE\s+DEPLOYED\s+ROUTES$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['front', 'gateway', 'greeter', 'greeter-staging', 'hello', 'ping']);
    expect(out.stdout).toMatch(/greeter\s+1\s+.*example\.com\/hello\/\*, greet\.example\.com\/\*/);
  });

  it('shows one worker', () => {
    const out = cinder(['workers', 'show', 'greeter']);
    expect(out.stdout).toContain('bindings:  GREETING = "Hello", SETTINGS = {"loud":true} (json)');
    expect(out.stdout).toContain('limits:    cpu_ms=100');
  });

  it('lists versions and rolls back', async () => {
    const entry = join(work, 'greeter', 'src', 'index.ts');
    writeFileSync(entry, readFileSync(entry, 'utf8').replace("' (v1)'", "' (v2)'"));
    expect(cinder(['deploy', join(work, 'greeter')]).stdout).toMatch(/^Deployed greeter: version 2/);
    expect((await get('greet.example.com')).text).toBe('HELLO, EDGE! (v2)');

    const versions = cinder(['workers', 'versions', 'greeter']);
    const rows = versions.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^\s+#\s+ID\s+CREATED\s+SIZE\s+HASH$/);
    expect(rows[1]).toMatch(/^\*\s+2\s+[0-9a-f-]{36}\s/);
    expect(rows[2]).toMatch(/^\s+1\s+[0-9a-f-]{36}\s/);

    const back = cinder(['workers', 'rollback', 'greeter']);
    expect(back.stdout).toMatch(/^Rolled greeter back to version 1 \([0-9a-f-]{36}\)\.\nVersion 2 is still stored: `cinder workers rollback greeter 2` brings it back\.\n$/);
    expect((await get('greet.example.com')).text).toBe('HELLO, EDGE! (v1)');
    expect((await get('www.example.com')).text).toBe('front -> HELLO, EDGE! (v1)');
    expect(cinder(['workers', 'rollback', 'greeter', '1']).stdout).toMatch(/already at version 1/);
    expect(cinder(['workers', 'rollback', 'greeter', '7']).stderr).toMatch(/has no version "7"/);
  });

  it('deletes a worker', async () => {
    const out = cinder(['workers', 'delete', 'greeter-staging']);
    expect(out.stdout).toBe('Deleted worker greeter-staging.\n');
    expect((await get('staging.example.com')).status).toBe(404);
    expect(cinder(['workers', 'delete', 'greeter-staging']).stderr).toMatch(/no worker named "greeter-staging"/);
  });
});

describe('cinder dev', { timeout: 90_000 }, () => {
  it('serves a wrangler project with its vars', async () => {
    const child = spawn(process.execPath, ['--no-node-snapshot', bin, 'dev', join(work, 'greeter'), '--port', '0'], { cwd: work });
    try {
      let stderr = '';
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`cinder dev did not start:\n${stderr}`)), 20_000);
        child.stderr!.on('data', (chunk) => {
          stderr += chunk;
          const match = /cinder dev: \S+ on (http:\/\/\S+)/.exec(stderr);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
        child.once('exit', (code) => reject(new Error(`cinder dev exited (${code}):\n${stderr}`)));
      });
      const res = await request(url, { headers: { host: 'greeter.localhost' } });
      expect(await res.body.text()).toMatch(/^HELLO, EDGE! \(v[12]\)$/);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('restart of cinder serve', { timeout: 90_000 }, () => {
  it('finds every worker, version, route and the rollback still there', async () => {
    const listBefore = cinder(['workers', 'list']).stdout;
    const versionsBefore = cinder(['workers', 'versions', 'greeter']).stdout;
    expect(await stopServe(serve)).toBe(0);

    serve = await startServe();
    expect(serve.token).toBeUndefined(); // not printed again
    expect(serve.stderr).toMatch(/5 workers, 4 routes restored/);
    expect(serve.stderr).toMatch(/admin token read from .*admin-token/);
    expect(cinder(['workers', 'list']).stdout).toBe(listBefore);
    expect(cinder(['workers', 'versions', 'greeter']).stdout).toBe(versionsBefore);
    expect((await get('greet.example.com')).text).toBe('HELLO, EDGE! (v1)');
    expect((await get('example.com', '/hello/x')).text).toBe('HELLO, EDGE! (v1)');
    expect((await get('www.example.com')).text).toBe('front -> HELLO, EDGE! (v1)');
    expect((await get('ping.localhost')).text).toBe('pong');
    expect((await get('example.com', '/api/x')).text).toBe('Hello from Cinder! You asked for /api/x\n');
    expect((await get('staging.example.com')).status).toBe(404);
    expect(cinder(['workers', 'rollback', 'greeter', '2']).status).toBe(0);
    expect((await get('greet.example.com')).text).toBe('HELLO, EDGE! (v2)');
  });

  it('never wrote the token to the log stream', () => {
    expect(logStream).toMatch(/"msg":"admin request"/);
    expect(logStream).not.toContain(token);
  });
});
