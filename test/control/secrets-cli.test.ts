// Secrets as a wrangler user handles them, through the real CLI against a real `cinder serve`:
// `cinder secret put` (value on stdin), `list`, `delete`, a `cinder deploy` after a put keeping
// the secret, and the value never appearing in anything the CLI, the admin API or the server's
// log stream shows. Also what `cinder deploy` builds: NODE_ENV "production", and no EPIPE trace
// when its output is cut short.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { tempDataDir } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'bin', 'cinder.js');
const work = tempDataDir();
const project = join(work, 'vault');
const SECRET = 'sk-live-4f8a9c2e71d3b6a0-never-print-me';
const SECOND = 'rotated-7b1e0d9f5a3c-also-never-printed';

let child: ChildProcess;
let dataUrl = '';
let adminUrl = '';
let token = '';
let serverOut = '';
let serverErr = '';
/** every stdout and stderr of every CLI run here */
let cliOutput = '';

function cinder(args: string[], input?: string, cwd = project): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--no-node-snapshot', bin, ...args], {
    cwd,
    input,
    encoding: 'utf8',
    env: { ...process.env, CINDER_ADMIN_TOKEN: '', CINDER_URL: adminUrl, CINDER_TOKEN: token },
    timeout: 30_000,
  });
  cliOutput += result.stdout + result.stderr;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function get(path = '/'): Promise<string> {
  const res = await request(`${dataUrl}${path}`, { headers: { host: 'vault.localhost' } });
  return res.body.text();
}

async function admin(method: string, path: string): Promise<{ status: number; text: string }> {
  const res = await request(`${adminUrl}${path}`, { method: method as 'GET', headers: { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, text: await res.body.text() };
}

function writeWorker(tag: string): void {
  writeFileSync(join(project, 'src', 'index.ts'), `export default { fetch(_req: Request, env: Record<string, unknown>): Response { return new Response(\`${tag} key=\${env.API_KEY} mode=\${env.MODE} node_env=\${String(process.env.NODE_ENV)}\`) } };\n`);
}

beforeAll(async () => {
  mkdirSync(join(project, 'src'), { recursive: true });
  writeFileSync(join(project, 'wrangler.toml'), 'name = "vault"\nmain = "src/index.ts"\n[vars]\nMODE = "plain"\n');
  writeWorker('v1');
  child = spawn(process.execPath, ['--no-node-snapshot', bin, 'serve', '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--data', join(work, 'data')], {
    cwd: work,
    env: { ...process.env, CINDER_ADMIN_TOKEN: '', CINDER_TOKEN: '', CINDER_URL: '' },
  });
  child.stdout!.on('data', (chunk) => (serverOut += chunk));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cinder serve did not start:\n${serverErr}`)), 20_000);
    child.stderr!.on('data', (chunk) => {
      serverErr += chunk;
      const urls = /data plane on (\S+), admin API on (\S+) /.exec(serverErr);
      const generated = /generated an admin token[^\n]*:\n\s+(\S+)\n/.exec(serverErr);
      if (urls && generated) {
        [, dataUrl, adminUrl] = urls;
        token = generated[1];
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`cinder serve exited (${code}):\n${serverErr}`)));
  });
}, 30_000);

afterAll(async () => {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
});

describe('cinder secret', { timeout: 120_000 }, () => {
  it('deploys with NODE_ENV replaced by "production" at build', async () => {
    const out = cinder(['deploy']);
    expect(out.stderr).toBe('');
    expect(out.stdout).toMatch(/^Deployed vault: version 1 /);
    expect(await get()).toBe('v1 key=undefined mode=plain node_env=production');
  });

  it('puts a secret read from stdin, without printing it, and the worker sees it', async () => {
    const out = cinder(['secret', 'put', 'API_KEY'], `${SECRET}\n`);
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/^Set secret API_KEY on worker vault: version 2 \(\S+\) is live\.\n$/);
    expect(await get()).toBe(`v1 key=${SECRET} mode=plain node_env=production`);
  });

  it('lists names and types only', () => {
    expect(cinder(['secret', 'list']).stdout).toBe('NAME     TYPE\nAPI_KEY  secret_text\n');
    expect(JSON.parse(cinder(['secret', 'list', '--json']).stdout)).toEqual([{ name: 'API_KEY', type: 'secret_text' }]);
    // --name reaches a worker from anywhere
    expect(cinder(['secret', 'list', '--name', 'vault', '--json'], undefined, work).status).toBe(0);
  });

  it('keeps the secret across the next deploy, as Cloudflare does', async () => {
    writeWorker('v2');
    const out = cinder(['deploy']);
    expect(out.stdout).toMatch(/^Deployed vault: version 3 /);
    expect(out.stdout).toMatch(/API_KEY \(secret_text\)/);
    expect(await get()).toBe(`v2 key=${SECRET} mode=plain node_env=production`);
  });

  it('replaces a secret with put, and refuses one that would take a var\'s name', async () => {
    expect(cinder(['secret', 'put', 'API_KEY'], SECOND).status).toBe(0);
    expect(await get()).toBe(`v2 key=${SECOND} mode=plain node_env=production`);
    const clash = cinder(['secret', 'put', 'MODE'], SECRET);
    expect(clash.status).toBe(1);
    expect(clash.stderr).toMatch(/worker "vault" already has a plain_text binding named MODE; a secret cannot take its name/);
  });

  it('never shows a value: workers show/versions (text and --json), the versions API, the dry run', async () => {
    const shown = [
      cinder(['workers', 'show', 'vault']).stdout,
      cinder(['workers', 'show', 'vault', '--json']).stdout,
      cinder(['workers', 'versions', 'vault', '--json']).stdout,
      cinder(['deploy', '--dry-run']).stdout,
      (await admin('GET', '/workers/vault/versions')).text,
      (await admin('GET', '/workers/vault/versions/4')).text,
      (await admin('GET', '/workers/vault/secrets')).text,
      (await admin('GET', '/workers/vault/secrets/API_KEY')).text,
    ];
    expect(shown[0]).toMatch(/API_KEY \(secret\)/);
    expect(JSON.parse(shown[6])).toEqual({ secrets: [{ name: 'API_KEY', type: 'secret_text' }] });
    for (const text of shown) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(SECOND);
    }
  });

  it('deletes a secret: a new version without it goes live', async () => {
    const out = cinder(['secret', 'delete', 'API_KEY', '-y']);
    expect(out.stdout).toMatch(/^Deleted secret API_KEY of worker vault: version 5 /);
    expect(await get()).toBe('v2 key=undefined mode=plain node_env=production');
    expect(cinder(['secret', 'list']).stdout).toBe('Worker vault has no secrets. Set one with `cinder secret put NAME`.\n');
    expect(cinder(['secret', 'delete', 'API_KEY', '-y']).stderr).toMatch(/worker "vault" has no secret named "API_KEY"/);
    expect(cinder(['secret', 'put', 'X', '--name', 'nope'], 'v').stderr).toMatch(/no worker named "nope"; deploy it first/);
  });

  // `script` gives the command a pseudo-terminal, as a person's shell would.
  it.skipIf(!existsSync('/usr/bin/script'))('asks for the value on a terminal, without echoing it', async () => {
    const command = `"${process.execPath}" --no-node-snapshot "${bin}" secret put API_KEY`;
    const pty = spawn('/usr/bin/script', ['-qefc', command, '/dev/null'], { cwd: project, env: { ...process.env, CINDER_ADMIN_TOKEN: '', CINDER_URL: adminUrl, CINDER_TOKEN: token } });
    let out = '';
    let typed = false;
    pty.stdout!.on('data', (chunk) => {
      out += chunk;
      if (!typed && out.includes('Enter a secret value for API_KEY: ')) {
        typed = true;
        pty.stdin!.write(`${SECOND}\r`);
      }
    });
    const code = await new Promise((resolve) => pty.once('exit', resolve));
    cliOutput += out;
    expect(code).toBe(0);
    expect(out).toMatch(/Set secret API_KEY on worker vault: version 6 /);
    expect(out).not.toContain(SECOND);
    expect(await get()).toBe(`v2 key=${SECOND} mode=plain node_env=production`);
  });

  it('wrote no secret value to any output or log', () => {
    expect(serverOut).toMatch(/"msg":"admin request"/);
    for (const text of [serverOut, serverErr, cliOutput]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(SECOND);
    }
  });

  it('`cinder deploy | head -1` ends without an EPIPE trace', () => {
    const piped = (pipe: string) =>
      spawnSync('sh', ['-c', `"${process.execPath}" --no-node-snapshot "${bin}" deploy | ${pipe}`], {
        cwd: project,
        encoding: 'utf8',
        env: { ...process.env, CINDER_ADMIN_TOKEN: '', CINDER_URL: adminUrl, CINDER_TOKEN: token },
        timeout: 30_000,
      });
    const head = piped('head -1');
    expect(head.stdout).toMatch(/^Deployed vault: version 7 .*\n$/);
    expect(head.stderr).toBe('');
    // A reader that is gone before the first line: every write meets a closed pipe.
    const gone = piped('true');
    expect(gone.stderr).toBe('');
    expect(cinder(['workers', 'versions', 'vault']).stdout).toMatch(/^\*\s+8\s/m);
  });

  it('warns when a var of the config replaces a secret of the same name', async () => {
    writeFileSync(join(project, 'wrangler.toml'), 'name = "vault"\nmain = "src/index.ts"\n[vars]\nMODE = "plain"\nAPI_KEY = "public"\n');
    const out = cinder(['deploy']);
    expect(out.status).toBe(0);
    expect(out.stderr).toBe('cinder deploy: warning: API_KEY is a secret of vault, replaced by the var of the same name in the config\n');
    expect(await get()).toBe('v2 key=public mode=plain node_env=production');
    expect(cinder(['secret', 'list']).stdout).toMatch(/has no secrets/);
  });
});
