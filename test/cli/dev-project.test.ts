// `cinder dev` on wrangler projects, as a wrangler user runs it: the real CLI in a child process,
// in the project directory with no path, real files edited under it the way editors save them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'cinder-dev-project-'));
const DEV_SECRET = 'dev-secret-93c1f0a7b2e4-not-for-logs';

interface Dev {
  child: ChildProcess;
  url: string;
  /** the worker names `cinder dev` announced */
  workers: string;
  stdout(): string;
  stderr(): string;
  stop(): Promise<void>;
}

const running = new Set<Dev>();

async function dev(args: string[], cwd: string): Promise<Dev> {
  const child = spawn(process.execPath, ['--no-node-snapshot', bin, 'dev', '--port', '0', ...args], { cwd, env: { ...process.env, NO_COLOR: '' } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  const started = await new Promise<{ url: string; workers: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cinder dev did not start:\n${err}`)), 30_000);
    child.stderr!.on('data', (chunk) => {
      err += chunk;
      const match = /cinder dev: (.+) on (http:\/\/\S+)/.exec(err);
      if (match) {
        clearTimeout(timer);
        resolve({ workers: match[1], url: match[2] });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`cinder dev exited (${code}):\n${err}`));
    });
  });
  const handle: Dev = {
    child,
    ...started,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      running.delete(handle);
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
  running.add(handle);
  return handle;
}

afterAll(async () => {
  for (const d of [...running]) await d.stop();
});

async function get(d: Dev, host: string, path = '/'): Promise<{ status: number; text: string }> {
  const res = await request(`${d.url}${path}`, { headers: { host } });
  return { status: res.statusCode, text: await res.body.text() };
}

/** Ask until the answer passes `ok` (a reload is asynchronous); at most 100 tries. */
async function eventually(d: Dev, host: string, path: string, ok: (text: string) => boolean): Promise<string> {
  let text = '';
  for (let i = 0; i < 100; i++) {
    text = (await get(d, host, path)).text;
    if (ok(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  return text;
}

function write(path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

/** Save as vim, JetBrains and sed -i do: a new file renamed over the old one. */
function atomicSave(path: string, text: string): void {
  writeFileSync(`${path}.tmp~`, text);
  renameSync(`${path}.tmp~`, path);
}

/** The JSON log lines of a dev's stdout. */
function logLines(d: Dev): Record<string, any>[] {
  return d.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

const shop = join(work, 'shop');
const index = (tag: string) => `import { fail } from './fail';
export default {
  async fetch(request: Request, env: any): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname === '/boom') fail();
    if (pathname === '/count') {
      const n = Number((await env.CART.get('n')) ?? 0) + 1;
      await env.CART.put('n', String(n));
      return new Response(String(n));
    }
    if (pathname === '/color') console.log('\\x1b[32mgreen words\\x1b[39m');
    return Response.json({ tag: '${tag}', mode: env.MODE, token: env.TOKEN, extra: env.EXTRA ?? null, nodeEnv: String(process.env.NODE_ENV) });
  },
};
`;

write(join(shop, 'wrangler.toml'), `name = "shop"
main = "src/index.ts"
compatibility_date = "2025-01-01"
kv_namespaces = [{ binding = "CART", id = "cart" }]

[vars]
MODE = "local"

[env.staging]
kv_namespaces = [{ binding = "CART", id = "cart-staging" }]
vars = { MODE = "staging" }
`);
write(join(shop, '.dev.vars'), `# local secrets\nTOKEN="${DEV_SECRET}"\n`);
write(join(shop, '.dev.vars.staging'), 'TOKEN=staging-token\n');
write(join(shop, 'src', 'index.ts'), index('v1'));
write(join(shop, 'src', 'fail.ts'), `export function fail(): never {\n  throw new TypeError('card declined');\n}\n`);

describe('cinder dev in a wrangler project', { timeout: 120_000 }, () => {
  let d: Dev;

  it('serves the project in the current directory under its name, with .dev.vars and --var', async () => {
    d = await dev(['--var', 'EXTRA:a:b'], shop);
    expect(d.workers).toBe('shop');
    const res = await get(d, 'shop.localhost');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ tag: 'v1', mode: 'local', token: DEV_SECRET, extra: 'a:b', nodeEnv: 'development' });
  });

  it('maps a worker stack to the original TypeScript file and line', async () => {
    const res = await get(d, 'shop.localhost', '/boom');
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/TypeError: card declined\n\s+at fail \(src\/fail\.ts:2:9\)\n\s+at Object\.fetch \(src\/index\.ts:5:\d+\)/);
    await eventually(d, 'shop.localhost', '/', () => logLines(d).some((l) => l.path === '/boom'));
    const line = logLines(d).find((l) => l.path === '/boom')!;
    expect(line.err).toMatch(/at fail \(src\/fail\.ts:2:9\)/);
    expect(line.err).not.toMatch(/file:\/\/\/index\.js/);
  });

  it('reloads after atomic saves, again and again', async () => {
    atomicSave(join(shop, 'src', 'index.ts'), index('v2'));
    expect(JSON.parse(await eventually(d, 'shop.localhost', '/', (t) => t.includes('"v2"'))).tag).toBe('v2');
    atomicSave(join(shop, 'src', 'fail.ts'), `export function fail(): never {\n  throw new TypeError('card declined again');\n}\n`);
    expect(await eventually(d, 'shop.localhost', '/boom', (t) => t.includes('again'))).toContain('card declined again');
    atomicSave(join(shop, 'src', 'index.ts'), index('v3'));
    expect(JSON.parse(await eventually(d, 'shop.localhost', '/', (t) => t.includes('"v3"'))).tag).toBe('v3');
  });

  it('re-reads wrangler.toml and .dev.vars when they change', async () => {
    const toml = readFileSync(join(shop, 'wrangler.toml'), 'utf8');
    atomicSave(join(shop, 'wrangler.toml'), toml.replace('MODE = "local"', 'MODE = "edited"'));
    expect(JSON.parse(await eventually(d, 'shop.localhost', '/', (t) => t.includes('edited'))).mode).toBe('edited');
    writeFileSync(join(shop, '.dev.vars'), `TOKEN="${DEV_SECRET}-2"\n`);
    expect(JSON.parse(await eventually(d, 'shop.localhost', '/', (t) => t.includes(`${DEV_SECRET}-2`))).token).toBe(`${DEV_SECRET}-2`);
    writeFileSync(join(shop, '.dev.vars'), `TOKEN="${DEV_SECRET}"\n`);
    // a config broken mid-edit: said, and the worker keeps serving
    writeFileSync(join(shop, 'wrangler.toml'), toml.replace('[vars]', '[vars'));
    let broken: Record<string, any> | undefined;
    for (let i = 0; i < 100 && !broken; i++) {
      await new Promise((r) => setTimeout(r, 100));
      broken = logLines(d).find((l) => /wrangler\.toml is not valid TOML/.test(l.err ?? ''));
    }
    expect(broken?.msg).toBe('reload of shop failed; still serving the previous version');
    expect((await get(d, 'shop.localhost')).status).toBe(200);
    writeFileSync(join(shop, 'wrangler.toml'), toml);
    expect(JSON.parse(await eventually(d, 'shop.localhost', '/', (t) => t.includes('"local"') && t.includes(`${DEV_SECRET}"`))).mode).toBe('local');
  });

  it('shows a syntax error with its code frame, keeps serving, and recovers on the fix', async () => {
    atomicSave(join(shop, 'src', 'index.ts'), index('v4').replace('const n = Number(', 'const n = Number(('));
    let failure: Record<string, any> | undefined;
    for (let i = 0; i < 100 && !failure; i++) {
      await new Promise((r) => setTimeout(r, 100));
      failure = logLines(d).find((l) => /could not build shop/.test(l.err ?? ''));
    }
    expect(failure?.msg).toBe('reload of shop failed; still serving the previous version');
    // esbuild's frame: file:line:col, the line itself, and a caret under the spot
    expect(failure?.err).toMatch(/src\/index\.ts:7:\d+:\n\s+7 │ +const n = Number\(\(\(await env\.CART\.get\('n'\)\) \?\? 0\) \+ 1;\n\s+│ +\^/);
    expect(JSON.parse((await get(d, 'shop.localhost')).text).tag).toBe('v3');
    atomicSave(join(shop, 'src', 'index.ts'), index('v5'));
    expect(JSON.parse(await eventually(d, 'shop.localhost', '/', (t) => t.includes('"v5"'))).tag).toBe('v5');
  });

  it('keeps KV data under .cinder/state across a restart (and only in memory with --no-persist)', async () => {
    expect((await get(d, 'shop.localhost', '/count')).text).toBe('1');
    expect((await get(d, 'shop.localhost', '/count')).text).toBe('2');
    await d.stop();
    expect(existsSync(join(shop, '.cinder', 'state', 'kv.sqlite'))).toBe(true);
    expect(readFileSync(join(shop, '.cinder', '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    d = await dev([], shop);
    expect((await get(d, 'shop.localhost', '/count')).text).toBe('3');
    await d.stop();
    d = await dev(['--no-persist'], shop);
    expect((await get(d, 'shop.localhost', '/count')).text).toBe('1');
    const persisted = join(work, 'elsewhere');
    await d.stop();
    d = await dev(['--persist-to', persisted], shop);
    expect((await get(d, 'shop.localhost', '/count')).text).toBe('1');
    expect(existsSync(join(persisted, 'kv.sqlite'))).toBe(true);
  });

  it('never logged a .dev.vars value', () => {
    expect(d.stdout() + d.stderr()).not.toContain(DEV_SECRET);
  });

  it('--env picks the environment: its name, vars, KV namespace and .dev.vars.<env>', async () => {
    await d.stop();
    d = await dev(['--env', 'staging'], shop);
    expect(d.workers).toBe('shop-staging');
    expect(JSON.parse((await get(d, 'shop-staging.localhost')).text)).toMatchObject({ mode: 'staging', token: 'staging-token', extra: null });
    expect((await get(d, 'shop-staging.localhost', '/count')).text).toBe('1');
    await d.stop();
  });
});

describe('cinder dev with several workers', { timeout: 90_000 }, () => {
  it('serves every -c config, and they reach each other through service bindings', async () => {
    write(join(work, 'api', 'wrangler.toml'), 'name = "api"\nmain = "index.js"\n[vars]\nWHO = "the api"\n');
    write(join(work, 'api', 'index.js'), 'export default { fetch(request, env) { return new Response(`hello from ${env.WHO} (${new URL(request.url).pathname})`) } };\n');
    write(join(work, 'front', 'wrangler.jsonc'), '{\n  // the public worker\n  "name": "front",\n  "main": "src/index.ts",\n  "services": [{ "binding": "API", "service": "api" }],\n}\n');
    write(join(work, 'front', 'src', 'index.ts'), "export default { async fetch(request: Request, env: { API: Fetcher }): Promise<Response> { const r = await env.API.fetch('http://api/inner'); return new Response(`front -> ${await r.text()}`) } };\n");
    const d = await dev(['-c', 'front/wrangler.jsonc', '-c', 'api/wrangler.toml'], work);
    try {
      expect(d.workers).toBe('front, api');
      // the first config's worker answers any host
      expect((await get(d, 'localhost')).text).toBe('front -> hello from the api (/inner)');
      expect((await get(d, 'api.localhost', '/x')).text).toBe('hello from the api (/x)');
    } finally {
      await d.stop();
    }
  });

  it('starts with a worker that does not build, and serves it once fixed', async () => {
    write(join(work, 'late', 'wrangler.toml'), 'name = "late"\nmain = "index.ts"\n');
    write(join(work, 'late', 'index.ts'), 'export default { fetch(): Response { return new Response("late" }\n');
    const d = await dev([], join(work, 'late'));
    try {
      const failure = logLines(d).find((l) => l.worker === 'late' && /could not build late/.test(l.err ?? ''));
      expect(failure?.err).toMatch(/index\.ts:1:\d+:/);
      atomicSave(join(work, 'late', 'index.ts'), 'export default { fetch(): Response { return new Response("late but here") } };\n');
      expect(await eventually(d, 'late.localhost', '/', (t) => t === 'late but here')).toBe('late but here');
    } finally {
      await d.stop();
    }
  });
});

describe('cinder dev logs', { timeout: 60_000 }, () => {
  // `script` runs the command on a pseudo-terminal, as a person's shell would.
  it.skipIf(!existsSync('/usr/bin/script'))('are human lines, coloured, by default in a terminal', async () => {
    const command = `"${process.execPath}" --no-node-snapshot "${bin}" dev --port 0 --no-persist`;
    const child = spawn('/usr/bin/script', ['-qefc', command, '/dev/null'], { cwd: shop, env: { ...process.env, NO_COLOR: '' } });
    let out = '';
    child.stdout!.on('data', (chunk) => (out += chunk));
    try {
      let url: string | undefined;
      for (let i = 0; i < 300 && !url; i++) {
        await new Promise((r) => setTimeout(r, 100));
        url = /cinder dev: shop on (http:\/\/[\d.:]+)/.exec(out)?.[1];
      }
      expect(url).toBeDefined();
      await request(`${url}/color`, { headers: { host: 'shop.localhost' } }).then((res) => res.body.text());
      for (let i = 0; i < 50 && !/GET \/color/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      // level and worker in colour, the worker's own escapes untouched
      expect(out).toMatch(/\x1b\[32mINFO \x1b\[39m \x1b\[36m\[shop\]\x1b\[39m \x1b\[32mgreen words\x1b\[39m/);
      expect(out).toMatch(/\x1b\[36m\[shop\]\x1b\[39m GET \/color \x1b\[32m200\x1b\[39m/);
      expect(out).not.toContain('"level":');
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('are human lines on request (a terminal gets them by default), with the worker\'s colours as real escapes', async () => {
    const d = await dev(['--log-format', 'pretty', '--no-persist'], shop);
    try {
      await get(d, 'shop.localhost', '/color');
      let out = '';
      for (let i = 0; i < 50 && !/GET \/color 200/.test(out); i++) {
        await new Promise((r) => setTimeout(r, 100));
        out = d.stdout();
      }
      expect(out).toMatch(/^\d\d:\d\d:\d\d INFO  \[shop\] \x1b\[32mgreen words\x1b\[39m$/m);
      expect(out).toMatch(/^\d\d:\d\d:\d\d INFO  \[shop\] GET \/color 200 \(/m);
      expect(out).toMatch(/^\d\d:\d\d:\d\d INFO  cinder dev listening on http/m);
      expect(out).not.toContain('\\u001b');
      expect(out).not.toMatch(/^\{/m);
    } finally {
      await d.stop();
    }
  });
});
