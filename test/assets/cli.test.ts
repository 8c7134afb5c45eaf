// [assets] through the CLI as a user runs it (the built bin/cinder.js in a child process): `cinder
// deploy` of a wrangler project with a worker and an SPA build directory, again with nothing
// changed (no file sent), an assets-only project, refusals (a file over 25 MiB, Workers Sites), and
// `cinder dev` serving the directory and picking up a changed file.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, truncateSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startCinder, TOKEN, type TestCinder } from '../control/helpers.js';
import { spaBuild } from './helpers.js';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
const build = spaBuild();
let cinder: TestCinder;

const workerSource = `interface Env { ASSETS: { fetch(input: Request | string): Promise<Response> } }
export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/api/index-length') {
      const index = await env.ASSETS.fetch(new URL('/', url).href);
      return new Response(String((await index.text()).length));
    }
    return Response.json({ api: url.pathname });
  },
};
`;

function project(dir: string, config: string, name = 'wrangler.toml'): string {
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(join(dir, 'src', 'index.ts'), workerSource);
  writeFileSync(join(dir, name), config);
  return dir;
}

/** The CLI in a child process, asynchronously: the server it talks to runs in this process. */
function cinderCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--no-node-snapshot', bin, ...args], { env: { ...process.env, CINDER_URL: cinder.server.adminUrl, CINDER_TOKEN: TOKEN } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

async function get(base: string, host: string, path: string, headers: Record<string, string> = {}) {
  const res = await request(`${base}${path}`, { headers: { host, ...headers } });
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
}

beforeAll(async () => {
  cinder = await startCinder();
  project(build.root, `name = "shop"\nmain = "src/index.ts"\ncompatibility_date = "2025-06-01"\n\n[assets]\ndirectory = "./dist"\nbinding = "ASSETS"\nnot_found_handling = "single-page-application"\nrun_worker_first = ["/api/*"]\n`);
});
afterAll(() => cinder.close({ cleanup: true }));

describe('cinder deploy with [assets]', () => {
  it('uploads the directory with the worker; the site and its API answer', async () => {
    const out = await cinderCli(['deploy', build.root]);
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/Assets: 9 files, 9 uploaded/);
    expect(out.stdout).toMatch(/Deployed shop: version 1/);
    const index = await get(cinder.server.url, 'shop.example', '/');
    expect(index.text).toBe(build.files['/index.html'].toString());
    expect((await get(cinder.server.url, 'shop.example', '/cart', { 'sec-fetch-mode': 'navigate' })).text).toBe(build.files['/index.html'].toString());
    expect(JSON.parse((await get(cinder.server.url, 'shop.example', '/api/items')).text)).toEqual({ api: '/api/items' });
    expect((await get(cinder.server.url, 'shop.example', '/api/index-length')).text).toBe(String(build.files['/index.html'].length));
  });

  it('sends no file again when none changed', async () => {
    const out = await cinderCli(['deploy', build.root]);
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/Assets: 9 files, 0 uploaded \(0 B\), 9 already on the server/);
    expect(out.stdout).toMatch(/version 2/);
  });

  it('deploys a project of assets only (no main)', async () => {
    const dir = join(build.root, 'static-only');
    mkdirSync(join(dir, 'public'), { recursive: true });
    writeFileSync(join(dir, 'public', 'index.html'), '<h1>static</h1>');
    writeFileSync(join(dir, 'wrangler.jsonc'), '{\n  // just files\n  "name": "brochure",\n  "assets": { "directory": "./public" },\n}\n');
    const out = await cinderCli(['deploy', dir]);
    expect(out.status, out.stderr).toBe(0);
    expect((await get(cinder.server.url, 'brochure.example', '/')).text).toBe('<h1>static</h1>');
    expect((await get(cinder.server.url, 'brochure.example', '/nope')).status).toBe(404);
  });

  it('refuses a file over 25 MiB, naming it, before uploading anything', async () => {
    const dir = join(build.root, 'too-big');
    mkdirSync(join(dir, 'public'), { recursive: true });
    writeFileSync(join(dir, 'public', 'movie.mp4'), '');
    truncateSync(join(dir, 'public', 'movie.mp4'), 25 * 1024 * 1024 + 1);
    writeFileSync(join(dir, 'wrangler.toml'), 'name = "big"\n[assets]\ndirectory = "./public"\n');
    const out = await cinderCli(['deploy', dir]);
    expect(out.status).not.toBe(0);
    expect(out.stderr).toMatch(/movie\.mp4 is 26214401 bytes, over the limit of 26214400 bytes \(25 MiB\) per asset file/);
    rmSync(dir, { recursive: true });
  });

  it('refuses Workers Sites, pointing at [assets]', async () => {
    const dir = join(build.root, 'sites');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'wrangler.toml'), 'name = "old"\nmain = "index.js"\n[site]\nbucket = "./public"\n');
    const out = await cinderCli(['deploy', dir]);
    expect(out.status).not.toBe(0);
    expect(out.stderr).toMatch(/site: Workers Sites \(site, __STATIC_CONTENT_MANIFEST\) is deprecated by Cloudflare and not supported by Cinder: serve the directory with \[assets\] instead/);
     // the code's side of Workers Sites, without the [site] key: refused at build, by name
    writeFileSync(join(dir, 'wrangler.toml'), 'name = "old"\nmain = "index.js"\n');
    writeFileSync(join(dir, 'index.js'), "import manifest from '__STATIC_CONTENT_MANIFEST';\nexport default { fetch() { return new Response(manifest) } };\n");
    const built = await cinderCli(['deploy', dir]);
    expect(built.status).not.toBe(0);
    expect(built.stderr).toMatch(/__STATIC_CONTENT_MANIFEST is Workers Sites .* serve the directory with \[assets\] instead/);
  });
});

describe('cinder dev with [assets]', () => {
  let child: ChildProcess;
  let url: string;

  beforeAll(async () => {
    child = spawn(process.execPath, [bin, 'dev', build.root, '--port', '0', '--no-supervisor'], { stdio: ['ignore', 'ignore', 'pipe'] });
    url = await new Promise<string>((resolve, reject) => {
      let err = '';
      child.stderr!.on('data', (chunk) => {
        err += chunk;
        const match = /on (http:\/\/[\d.:]+)/.exec(err);
        if (match) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`cinder dev exited with ${code}: ${err}`)));
    });
  });
  afterAll(() => {
    child.kill('SIGTERM');
  });

  it('serves the directory with the worker: files, ETag, SPA fallback, run_worker_first, env.ASSETS', async () => {
    const logo = await get(url, 'localhost', '/images/logo.svg');
    expect(logo.text).toBe(build.files['/images/logo.svg'].toString());
    expect(logo.headers.etag).toBe(`"${build.sha256('/images/logo.svg')}"`);
    expect((await get(url, 'localhost', '/images/logo.svg', { 'if-none-match': logo.headers.etag as string })).status).toBe(304);
    expect((await get(url, 'localhost', '/deep/link', { 'sec-fetch-mode': 'navigate' })).text).toBe(build.files['/index.html'].toString());
    expect(JSON.parse((await get(url, 'localhost', '/api/x')).text)).toEqual({ api: '/api/x' });
    expect((await get(url, 'localhost', '/api/index-length')).text).toBe(String(build.files['/index.html'].length));
  });

  it('serves a changed file after it changes on disk', async () => {
    writeFileSync(join(build.dist, 'docs', 'index.html'), '<h1>Docs, edited</h1>');
    let text = '';
    for (let i = 0; i < 100 && text !== '<h1>Docs, edited</h1>'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      text = (await get(url, 'localhost', '/docs/')).text;
    }
    expect(text).toBe('<h1>Docs, edited</h1>');
  });
});

describe('cinder dev with a project of assets only (no main)', () => {
  let child: ChildProcess;
  let url: string;
  let dir: string;

  beforeAll(async () => {
    // The same SPA build, with html_handling and 404-page as a user of a static site sets them,
    // and no worker at all: served as `cinder deploy` serves it.
    dir = join(build.root, 'dev-static-only');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'wrangler.toml'), `name = "brochure"\ncompatibility_date = "2025-06-01"\n\n[assets]\ndirectory = "../dist"\nnot_found_handling = "404-page"\nhtml_handling = "drop-trailing-slash"\n`);
    child = spawn(process.execPath, [bin, 'dev', '--port', '0', '--no-supervisor'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    url = await new Promise<string>((resolve, reject) => {
      let err = '';
      child.stderr!.on('data', (chunk) => {
        err += chunk;
        const match = /on (http:\/\/[\d.:]+)/.exec(err);
        if (match) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`cinder dev exited with ${code}: ${err}`)));
    });
  });
  afterAll(() => {
    child.kill('SIGTERM');
  });

  it('serves the files with their types, ETag and 304', async () => {
    const about = await get(url, 'localhost', '/about');
    expect(about.status).toBe(200);
    expect(about.text).toBe(build.files['/about.html'].toString());
    expect(about.headers['content-type']).toBe('text/html; charset=utf-8');
    const css = await get(url, 'brochure.localhost', '/assets/style.77aa01.css');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.headers.etag).toBe(`"${build.sha256('/assets/style.77aa01.css')}"`);
    const again = await get(url, 'localhost', '/assets/style.77aa01.css', { 'if-none-match': css.headers.etag as string });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
  });

  it('applies html_handling (drop-trailing-slash) and the 404 page', async () => {
    const slash = await get(url, 'localhost', '/about/');
    expect(slash.status).toBe(307);
    expect(slash.headers.location).toBe('/about');
    const missing = await get(url, 'localhost', '/no/such/page');
    expect(missing.status).toBe(404);
    expect(missing.text).toBe(build.files['/404.html'].toString());
    // .assetsignore keeps the source map out, as on deploy
    expect((await get(url, 'localhost', '/assets/app.3f2a1b9c.js.map')).status).toBe(404);
  });

  it('answers byte ranges with 206, and an unsatisfiable one with 416', async () => {
    const whole = build.files['/data/blob.bin'];
    const part = await request(`${url}/data/blob.bin`, { headers: { host: 'localhost', range: 'bytes=1000-1999' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-1999/${whole.length}`);
    expect(Buffer.from(await part.body.arrayBuffer()).equals(whole.subarray(1000, 2000))).toBe(true);
    const past = await get(url, 'localhost', '/data/blob.bin', { range: `bytes=${whole.length}-` });
    expect(past.status).toBe(416);
  });

  it('picks up an edit of the config: not_found_handling changed to single-page-application', async () => {
    writeFileSync(join(dir, 'wrangler.toml'), `name = "brochure"\ncompatibility_date = "2025-06-01"\n\n[assets]\ndirectory = "../dist"\nnot_found_handling = "single-page-application"\nhtml_handling = "drop-trailing-slash"\n`);
    let res = { status: 0, text: '' };
    for (let i = 0; i < 100 && res.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      res = await get(url, 'localhost', '/some/client/route', { 'sec-fetch-mode': 'navigate' });
    }
    expect(res.status).toBe(200);
    expect(res.text).toBe(build.files['/index.html'].toString());
  });

  it('a request method other than GET or HEAD gets 405 as on a deploy, and a new file is served once written', async () => {
    const post = await request(`${url}/about`, { method: 'POST', headers: { host: 'localhost' }, body: 'x' });
    expect(post.statusCode).toBe(405);
    await post.body.dump();
    writeFileSync(join(build.dist, 'fresh.html'), '<h1>fresh</h1>');
    let text = '';
    for (let i = 0; i < 100 && text !== '<h1>fresh</h1>'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      text = (await get(url, 'localhost', '/fresh')).text;
    }
    expect(text).toBe('<h1>fresh</h1>');
  });
});
