// wrangler's module rules, build.command and compatibility flags through the CLI a user runs:
// `cinder deploy` of real projects on disk to a real `cinder serve`, and `cinder dev` rebuilding
// when a file under build.watch_dir changes. Non-JS imports become modules of their own (Text,
// Data, CompiledWasm), as wrangler uploads them.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ADD_WASM } from './fixtures.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'bin', 'cinder.js');
const work = mkdtempSync(join(tmpdir(), 'cinder-rules-'));
const TOKEN = 'rules-test-admin-token-0123456789';

function write(path: string, content: string | Uint8Array): string {
  const full = join(work, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, content);
  return full;
}

let serve: ChildProcess;
let url = '';
let adminUrl = '';

beforeAll(async () => {
  serve = spawn(process.execPath, ['--no-node-snapshot', bin, 'serve', '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--data', join(work, 'data')], {
    env: { ...process.env, CINDER_ADMIN_TOKEN: TOKEN },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    serve.stderr!.on('data', (chunk) => {
      stderr += chunk;
      const urls = /data plane on (\S+), admin API on (\S+) /.exec(stderr);
      if (urls) {
        [url, adminUrl] = [urls[1], urls[2]];
        resolve();
      }
    });
    serve.once('exit', (code) => reject(new Error(`cinder serve exited (${code}):\n${stderr}`)));
  });
}, 30_000);

afterAll(async () => {
  if (serve && serve.exitCode === null) {
    const exited = new Promise((resolve) => serve.once('exit', resolve));
    serve.kill('SIGTERM');
    await exited;
  }
  rmSync(work, { recursive: true, force: true });
});

function deploy(path: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--no-node-snapshot', bin, 'deploy', path], {
    cwd: work,
    encoding: 'utf8',
    env: { ...process.env, CINDER_ADMIN_TOKEN: '', CINDER_URL: adminUrl, CINDER_TOKEN: TOKEN },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function get(host: string): Promise<{ status: number; text: string }> {
  const res = await request(url, { headers: { host } });
  return { status: res.statusCode, text: await res.body.text() };
}

const ENTRY = `
import page from "../assets/page.html";
import notes from "../assets/notes.md";
import table from "../assets/table.bin";
import extra from "../assets/extra.dat";
import addModule from "../assets/add.wasm";
import again from "../assets/add.wasm?module";
const { add } = new WebAssembly.Instance(addModule).exports;
export default {
  fetch() {
    return Response.json({ page, notes, table: Array.from(new Uint8Array(table)), extra: extra.byteLength, sum: add(20, 22), same: again === addModule, built: BUILT });
  },
};`;

describe('cinder deploy with module rules and build.command', { timeout: 120_000 }, () => {
  it('runs build.command, then uploads .html/.md as Text, .bin/.dat as Data and .wasm as CompiledWasm modules', async () => {
    write('site/src/index.js', ENTRY);
    write('site/assets/page.html', '<p>page</p>');
    write('site/assets/notes.md', '# notes');
    write('site/assets/table.bin', Uint8Array.from([3, 1, 4]));
    write('site/assets/extra.dat', Uint8Array.from([9, 9]));
    write('site/assets/add.wasm', ADD_WASM);
    // The build writes dist/index.js (the config's main) from src/, adding a constant.
    write('site/build.mjs', `import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.js", 'const BUILT = "yes";\\n' + readFileSync("src/index.js", "utf8"));
console.log("build ok");`);
    write(
      'site/wrangler.toml',
      `name = "site"
main = "dist/index.js"
compatibility_date = "2025-01-01"
rules = [
  { type = "Text", globs = ["**/*.md"], fallthrough = true },
  { type = "Data", globs = ["**/*.dat"], fallthrough = true },
]
[build]
command = ${JSON.stringify(`"${process.execPath}" build.mjs`)}
`,
    );
    const out = deploy(join(work, 'site'));
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/^Deployed site: version 1/);
    const res = await get('site.example.com');
    expect(res.status, res.text).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ page: '<p>page</p>', notes: '# notes', table: [3, 1, 4], extra: 2, sum: 42, same: true, built: 'yes' });
    // The upload holds the bundle and one module per file, as wrangler's does.
    const versions = await request(`${adminUrl}/workers/site`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await versions.body.json()) as { modules: { name: string; type: string }[] };
    expect(body.modules.map((m) => m.type).sort()).toEqual(['data', 'data', 'esm', 'text', 'text', 'wasm']);
    expect(body.modules.find((m) => m.type === 'wasm')!.name).toMatch(/^[0-9a-f]{40}-add\.wasm$/);
  });

  it('drops the default Text rule when the config has its own without fallthrough, as wrangler does', () => {
    write('own-text/index.js', 'import page from "./page.html"; export default { fetch() { return new Response(page); } };');
    write('own-text/page.html', '<p>x</p>');
    write('own-text/wrangler.toml', 'name = "own-text"\nmain = "index.js"\nrules = [{ type = "Text", globs = ["**/*.md"] }]\n');
    const out = deploy(join(work, 'own-text'));
    expect(out.status).toBe(1);
    expect(out.stderr).toMatch(/could not bundle .*index\.js:\n.*No loader is configured for "\.html" files/s);
  });

  it('fails with the build command\'s status and output when it fails, and uploads nothing', async () => {
    write('broken/index.js', 'export default { fetch() { return new Response("never"); } };');
    write('broken/wrangler.toml', `name = "broken"\nmain = "index.js"\n[build]\ncommand = "echo compiling; echo 'src/a.ts(1,1): error TS1005' >&2; exit 3"\n`);
    const out = deploy(join(work, 'broken'));
    expect(out.status).toBe(1);
    expect(out.stderr).toContain('build.command "echo compiling; echo \'src/a.ts(1,1): error TS1005\' >&2; exit 3" exited with status 3');
    expect(out.stderr).toContain('compiling');
    expect(out.stderr).toContain('src/a.ts(1,1): error TS1005');
    expect((await get('broken.example.com')).status).toBe(404);
  });

  it('refuses unknown build and rule fields by name', () => {
    write('badbuild/index.js', 'export default {};');
    write('badbuild/wrangler.toml', 'name = "badbuild"\nmain = "index.js"\n[build]\ncommand = "true"\nupload = { format = "modules" }\n');
    expect(deploy(join(work, 'badbuild')).stderr).toMatch(/build\.upload is not supported by Cinder/);
    write('badrule/wrangler.toml', 'name = "badrule"\nmain = "index.js"\nrules = [{ type = "Markdown", globs = ["**/*.md"] }]\n');
    write('badrule/index.js', 'export default {};');
    expect(deploy(join(work, 'badrule')).stderr).toMatch(/rules\[0\]\.type must be one of ESModule, CommonJS, CompiledWasm, Text, Data \(not "Markdown"\)/);
  });
});

describe('compatibility flags and Node.js built-ins at build', { timeout: 120_000 }, () => {
  it('refuses node:* imports without nodejs_compat, naming the module and the flag', () => {
    write('nocompat/index.js', 'import { Buffer } from "node:buffer"; export default { fetch() { return new Response(Buffer.from("x").toString("hex")); } };');
    write('nocompat/wrangler.toml', 'name = "nocompat"\nmain = "index.js"\n');
    const out = deploy(join(work, 'nocompat'));
    expect(out.status).toBe(1);
    expect(out.stderr).toContain('node:buffer needs the nodejs_compat compatibility flag');
  });

  it('refuses a Node.js module Workers does not offer, even under nodejs_compat', () => {
    write('fs/index.js', 'import { readFileSync } from "fs"; export default { fetch() { return new Response(readFileSync("/etc/passwd")); } };');
    write('fs/wrangler.toml', 'name = "fs"\nmain = "index.js"\ncompatibility_flags = ["nodejs_compat"]\n');
    const out = deploy(join(work, 'fs'));
    expect(out.status).toBe(1);
    expect(out.stderr).toMatch(/node:fs is not available on Cinder: there is no file system; use KV, R2 or static assets \(nodejs_compat offers node:assert, .*node:buffer/);
  });

  it('a compatibility_date of 2026-08-04 or later turns nodejs_compat on without the flag, as on Workers; no_nodejs_compat with no_nodejs_compat_v2 turns it off', async () => {
    const worker = 'import { Buffer } from "node:buffer"; import { createHash } from "crypto"; export default { fetch() { return new Response(createHash("sha1").update(Buffer.from("x")).digest("hex") + " " + typeof process); } };';
    write('dated/index.js', worker);
    write('dated/wrangler.toml', 'name = "dated"\nmain = "index.js"\ncompatibility_date = "2026-08-04"\n');
    const out = deploy(join(work, 'dated'));
    expect(out.status, out.stderr).toBe(0);
    // sha1("x"), and the process global that nodejs_compat_v2 brings
    expect(await get('dated.example')).toEqual({ status: 200, text: '11f6ad8ec52a2984abaafd7c3b516503785c2072 object' });
    write('dated-off/index.js', worker);
    write('dated-off/wrangler.toml', 'name = "dated-off"\nmain = "index.js"\ncompatibility_date = "2026-08-04"\ncompatibility_flags = ["no_nodejs_compat", "no_nodejs_compat_v2"]\n');
    const off = deploy(join(work, 'dated-off'));
    expect(off.status).toBe(1);
    expect(off.stderr).toContain('node:buffer is not available: no_nodejs_compat (with no_nodejs_compat_v2) turns Node.js compatibility off');
    write('dated-before/index.js', worker);
    write('dated-before/wrangler.toml', 'name = "dated-before"\nmain = "index.js"\ncompatibility_date = "2026-08-03"\n');
    const before = deploy(join(work, 'dated-before'));
    expect(before.status).toBe(1);
    expect(before.stderr).toContain('node:buffer needs the nodejs_compat compatibility flag (add compatibility_flags = ["nodejs_compat"], or set compatibility_date to 2026-08-04 or later');
  });

  it('refuses unknown compatibility flags by name before building', () => {
    write('flags/index.js', 'export default {};');
    write('flags/wrangler.toml', 'name = "flags"\nmain = "index.js"\ncompatibility_flags = ["nodejs_compat", "global_fetch_strictly_public"]\n');
    const out = deploy(join(work, 'flags'));
    expect(out.status).toBe(1);
    expect(out.stderr).toMatch(/compatibility_flags: "global_fetch_strictly_public" not supported by Cinder/);
  });
});

describe('cinder dev with build.command and watch_dir', { timeout: 120_000 }, () => {
  let dev: ChildProcess | undefined;
  afterAll(() => {
    dev?.kill('SIGTERM');
  });

  it('builds before serving, and builds and reloads again when a watched file changes', async () => {
    write('devsite/src/message.txt', 'first');
    write('devsite/build.mjs', `import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
const message = JSON.stringify(readFileSync("src/message.txt", "utf8"));
mkdirSync("out", { recursive: true });
writeFileSync("out/index.js", 'import page from "../assets/page.html";\\nexport default { fetch() { return new Response(page + ' + message + '); } };\\n');`);
    // (the build inlines src/message.txt: a change there is seen only through a rebuild)
    write('devsite/assets/page.html', 'page:');
    write('devsite/wrangler.toml', `name = "devsite"\nmain = "out/index.js"\n[build]\ncommand = ${JSON.stringify(`"${process.execPath}" build.mjs`)}\nwatch_dir = "src"\n`);
    dev = spawn(process.execPath, ['--no-node-snapshot', bin, 'dev', join(work, 'devsite'), '--port', '0', '--no-supervisor'], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const devUrl = await new Promise<string>((resolve, reject) => {
      dev!.stderr!.on('data', (chunk) => {
        stderr += chunk;
        const match = /on (http:\/\/[\d.:]+)/.exec(stderr);
        if (match) resolve(match[1]);
      });
      dev!.once('exit', (code) => reject(new Error(`cinder dev exited with ${code}: ${stderr}`)));
    });
    const read = async () => (await (await request(devUrl)).body.text());
    expect(await read()).toBe('page:first');
    write('devsite/src/message.txt', 'second');
    let seen = '';
    for (let i = 0; i < 100 && seen !== 'page:second'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = await read();
    }
    expect(seen).toBe('page:second');
  });
});
