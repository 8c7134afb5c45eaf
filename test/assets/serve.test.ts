// Static assets through `cinder serve`: a real SPA-like build directory uploaded over the admin API
// (manifest first, then only the files the server lacks), served by the data plane with ETag/304,
// Range (206/416), HEAD and the right Content-Type; SPA fallback, 404 page, html_handling redirects,
// run_worker_first, env.ASSETS.fetch from the worker, an assets-only worker, refusals (a file over
// 25 MiB, a wrong hash, traversal in every spelling), and everything still there after a restart.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { multipart, startCinder, TOKEN, type TestCinder } from '../control/helpers.js';
import { AdminClient } from '../../src/app/cli/client.js';
import { uploadAssets, type ProjectAssets } from '../../src/app/cli/assets.js';
import { rawGet, spaBuild, type BuildDir } from './helpers.js';

const build: BuildDir = spaBuild();
let cinder: TestCinder;
let client: AdminClient;

// The app's worker: its API under /api/*, reading assets through env.ASSETS for one route.
const appWorker = `export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/api/logo') {
      const res = await env.ASSETS.fetch(new Request(new URL('/images/logo.svg', url), { headers: request.headers }));
      return new Response(res.body, { status: res.status, headers: { 'x-via': 'binding', 'content-type': res.headers.get('content-type') ?? '', etag: res.headers.get('etag') ?? '' } });
    }
    if (url.pathname === '/api/missing') {
      const res = await env.ASSETS.fetch('https://any.host/no/such/file');
      return new Response('binding said ' + res.status + ': ' + (await res.text()).slice(0, 40));
    }
    if (url.pathname === '/api/range') {
      const res = await env.ASSETS.fetch(new Request(new URL('/data/blob.bin', url), { headers: { range: 'bytes=10-19' } }));
      return new Response(await res.arrayBuffer(), { status: res.status, headers: { 'content-range': res.headers.get('content-range') ?? '' } });
    }
    return new Response('worker: ' + request.method + ' ' + url.pathname);
  },
};`;

async function deploy(name: string, assets: ProjectAssets, options: { code?: string; binding?: string } = {}) {
  const report = await uploadAssets(client, name, assets);
  const config: Record<string, unknown> = {};
  if (assets.htmlHandling) config.html_handling = assets.htmlHandling;
  if (assets.notFoundHandling) config.not_found_handling = assets.notFoundHandling;
  if (assets.runWorkerFirst !== undefined) config.run_worker_first = assets.runWorkerFirst;
  const metadata: Record<string, unknown> = { assets: { session: report.session, config } };
  if (options.binding) metadata.bindings = [{ type: 'assets', name: options.binding }];
  if (options.code) metadata.main_module = 'index.js';
  const res = await cinder.admin('PUT', `/workers/${name}`, { body: multipart(metadata, options.code ? { 'index.js': options.code } : {}) });
  expect(res.status, res.text).toBe(201);
  return report;
}

const get = async (host: string, path: string, headers: Record<string, string> = {}, method = 'GET') => {
  const res = await request(`${cinder.server.url}${path}`, { method: method as 'GET', headers: { host, ...headers } });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers as Record<string, string>, body, text: body.toString('utf8') };
};

beforeAll(async () => {
  cinder = await startCinder();
  client = new AdminClient(cinder.server.adminUrl, TOKEN);
  await deploy('app', { directory: build.dist, notFoundHandling: 'single-page-application', runWorkerFirst: ['/api/*'] }, { code: appWorker, binding: 'ASSETS' });
  await deploy('docs', { directory: build.dist, notFoundHandling: '404-page' });
});
afterAll(() => cinder.close({ cleanup: true }));

describe('assets served by the data plane', () => {
  it('serves files with their content type, a strong ETag of their hash, and Content-Length', async () => {
    const index = await get('app.example', '/');
    expect(index.status).toBe(200);
    expect(index.body.equals(build.files['/index.html'])).toBe(true);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers.etag).toBe(`"${build.sha256('/index.html')}"`);
    expect(index.headers['content-length']).toBe(String(build.files['/index.html'].length));
    const types = await Promise.all(['/assets/app.3f2a1b9c.js', '/assets/style.77aa01.css', '/images/logo.svg', '/data/blob.bin'].map(async (p) => (await get('app.example', p)).headers['content-type']));
    expect(types).toEqual(['text/javascript; charset=utf-8', 'text/css; charset=utf-8', 'image/svg+xml; charset=utf-8', 'application/octet-stream']);
    const blob = await get('app.example', '/data/blob.bin');
    expect(blob.body.equals(build.files['/data/blob.bin'])).toBe(true);
  });

  it('answers If-None-Match with 304 and no body; another tag gets the file', async () => {
    const etag = `"${build.sha256('/assets/app.3f2a1b9c.js')}"`;
    const fresh = await get('app.example', '/assets/app.3f2a1b9c.js', { 'if-none-match': `W/"other", ${etag}` });
    expect(fresh.status).toBe(304);
    expect(fresh.body.length).toBe(0);
    expect(fresh.headers.etag).toBe(etag);
    expect((await get('app.example', '/assets/app.3f2a1b9c.js', { 'if-none-match': '"stale"' })).status).toBe(200);
  });

  it('answers one byte range with 206 and the bytes, and an unsatisfiable one with 416', async () => {
    const whole = build.files['/data/blob.bin'];
    const part = await get('app.example', '/data/blob.bin', { range: 'bytes=1000-1999' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-1999/${whole.length}`);
    expect(part.body.equals(whole.subarray(1000, 2000))).toBe(true);
    const tail = await get('app.example', '/data/blob.bin', { range: 'bytes=-16' });
    expect(tail.body.equals(whole.subarray(whole.length - 16))).toBe(true);
    const past = await get('app.example', '/data/blob.bin', { range: `bytes=${whole.length}-` });
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${whole.length}`);
  });

  it('answers HEAD with the headers and no body', async () => {
    const head = await get('app.example', '/about.html', {}, 'HEAD');
    expect(head.status).toBe(307); // about.html is served at /about
    const page = await get('app.example', '/about', {}, 'HEAD');
    expect(page.status).toBe(200);
    expect(page.body.length).toBe(0);
    expect(page.headers['content-length']).toBe(String(build.files['/about.html'].length));
  });

  it('single-page-application: a browser navigation to an unknown path gets index.html; other requests reach the worker', async () => {
    const nav = await get('app.example', '/dashboard/settings', { 'sec-fetch-mode': 'navigate' });
    expect(nav.status).toBe(200);
    expect(nav.body.equals(build.files['/index.html'])).toBe(true);
    const xhr = await get('app.example', '/dashboard/settings');
    expect(xhr.text).toBe('worker: GET /dashboard/settings');
  });

  it('run_worker_first: /api/* reaches the worker even where a file would match; POST goes to the worker', async () => {
    expect((await get('app.example', '/api/anything')).text).toBe('worker: GET /api/anything');
    expect((await get('app.example', '/index.html', {}, 'POST')).text).toBe('worker: POST /index.html');
  });

  it('env.ASSETS.fetch reads the assets from the worker: body, type, ETag, 404, ranges', async () => {
    const logo = await get('app.example', '/api/logo');
    expect(logo.headers['x-via']).toBe('binding');
    expect(logo.body.equals(build.files['/images/logo.svg'])).toBe(true);
    expect(logo.headers['content-type']).toBe('image/svg+xml; charset=utf-8');
    expect(logo.headers.etag).toBe(`"${build.sha256('/images/logo.svg')}"`);
    // the binding applies not_found_handling too: the SPA's index.html for a path nothing matches
    expect((await get('app.example', '/api/missing')).text).toBe(`binding said 200: ${build.files['/index.html'].toString().slice(0, 40)}`);
    const range = await get('app.example', '/api/range');
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 10-19/${build.files['/data/blob.bin'].length}`);
    expect(range.body.equals(build.files['/data/blob.bin'].subarray(10, 20))).toBe(true);
    // a 304 through the binding
    const cached = await get('app.example', '/api/logo', { 'if-none-match': `"${build.sha256('/images/logo.svg')}"` });
    expect(cached.status).toBe(304);
  });

  it('env.ASSETS works from an isolate born from the version\'s deployment snapshot too', async () => {
    let def = cinder.server.runtime.definition('app');
    for (let i = 0; i < 200 && !def?.snapshot; i++) {
      await new Promise((r) => setTimeout(r, 100));
      def = cinder.server.runtime.definition('app');
    }
    expect(def?.snapshot).toBeTruthy();
    cinder.server.runtime.evict('app');
    const logo = await get('app.example', '/api/logo');
    expect(logo.status).toBe(200);
    expect(logo.body.equals(build.files['/images/logo.svg'])).toBe(true);
  });

  it('leaves out what .assetsignore lists', async () => {
    expect((await get('app.example', '/assets/app.3f2a1b9c.js.map')).text).toBe('worker: GET /assets/app.3f2a1b9c.js.map');
    expect((await get('docs.example', '/assets/app.3f2a1b9c.js.map')).status).toBe(404);
  });
});

describe('an assets-only worker (no code), 404-page and html_handling', () => {
  it('serves files and redirects to canonical paths, keeping the query', async () => {
    expect((await get('docs.example', '/about')).body.equals(build.files['/about.html'])).toBe(true);
    const html = await get('docs.example', '/about.html?ref=1');
    expect(html.status).toBe(307);
    expect(html.headers.location).toBe('/about?ref=1');
    expect((await get('docs.example', '/docs')).headers.location).toBe('/docs/');
    expect((await get('docs.example', '/docs/')).body.equals(build.files['/docs/index.html'])).toBe(true);
    expect((await get('docs.example', '/docs/index.html')).headers.location).toBe('/docs/');
    expect((await get('docs.example', '/docs/guide/install')).body.equals(build.files['/docs/guide/install.html'])).toBe(true);
  });

  it('answers unknown paths with the 404 page and status 404, and other methods with 405', async () => {
    const missing = await get('docs.example', '/docs/guide/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.equals(build.files['/404.html'])).toBe(true);
    const post = await get('docs.example', '/', {}, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('never leaves the manifest: traversal in every spelling is a 404 (or the worker), never a file', async () => {
    const targets = ['/../secret.txt', '/..%2fsecret.txt', '/%2e%2e/secret.txt', '/%2E%2E/%2E%2E/etc/passwd', '/docs/..%5c..%5csecret.txt', '/assets\\..\\..\\secret.txt', '/index.html%00.js', '/%00', '/..', '/./index.html'];
    for (const target of targets) {
      const res = await rawGet(cinder.server.url, target, { host: 'docs.example' });
      expect([400, 404], target).toContain(res.status);
      expect(res.text, target).not.toContain('outside the assets directory');
      expect(res.text, target).not.toContain('root:');
      const app = await rawGet(cinder.server.url, target, { host: 'app.example' });
      expect(app.text, target).not.toContain('outside the assets directory');
    }
  });

  it('keeps its assets when a secret makes a new version, for an assets-only worker and for one with code', async () => {
    for (const worker of ['docs', 'app']) {
      const res = await cinder.admin('PUT', `/workers/${worker}/secrets`, { json: { name: 'API_KEY', text: 'shh' } });
      expect(res.status, res.text).toBe(200);
    }
    expect((await get('docs.example', '/docs/')).body.equals(build.files['/docs/index.html'])).toBe(true);
    expect((await get('app.example', '/api/logo')).body.equals(build.files['/images/logo.svg'])).toBe(true);
  });

  it('logs asset answers like other requests', async () => {
    await get('docs.example', '/about');
    expect(cinder.logs.some((l) => l.worker === 'docs' && l.path === '/about' && l.status === 200 && l.asset === true)).toBe(true);
  });
});

describe('uploads', () => {
  it('a second deploy of the same files sends none; a changed file is the only one sent', async () => {
    const again = await deploy('app', { directory: build.dist, notFoundHandling: 'single-page-application', runWorkerFirst: ['/api/*'] }, { code: appWorker, binding: 'ASSETS' });
    expect(again.uploaded).toBe(0);
    expect(again.files).toBe(Object.keys(build.files).length);
    writeFileSync(join(build.dist, 'about.html'), '<!doctype html><h1>About, v2</h1>\n');
    const changed = await deploy('app', { directory: build.dist, notFoundHandling: 'single-page-application', runWorkerFirst: ['/api/*'] }, { code: appWorker, binding: 'ASSETS' });
    expect(changed.uploaded).toBe(1);
    expect((await get('app.example', '/about')).text).toBe('<!doctype html><h1>About, v2</h1>\n');
    // the older version still serves its own manifest: a rollback brings the old page back
    const rolled = await cinder.admin('POST', '/workers/app/rollback', { json: {} });
    expect(rolled.status, rolled.text).toBe(200);
    expect((await get('app.example', '/about')).body.equals(build.files['/about.html'])).toBe(true);
  });

  it('refuses a file over 25 MiB, by name, before any byte is sent', async () => {
    const res = await cinder.admin('POST', '/workers/big/assets-upload-session', { json: { manifest: { '/video.mp4': { hash: 'a'.repeat(64), size: 25 * 1024 * 1024 + 1 } } } });
    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/asset "\/video\.mp4" is 26214401 bytes, over the limit of 26214400 bytes \(25 MiB\) per file/);
  });

  it('refuses manifest paths that could escape, and blobs that do not match their hash', async () => {
    for (const path of ['/../etc/passwd', 'index.html', '/a\\b', '/a\u0000b', '/dir/']) {
      const res = await cinder.admin('POST', '/workers/bad/assets-upload-session', { json: { manifest: { [path]: { hash: 'a'.repeat(64), size: 1 } } } });
      expect(res.status, path).toBe(400);
    }
    const content = Buffer.from('the real content');
    const hash = createHash('sha256').update(content).digest('hex');
    const session = await cinder.admin('POST', '/workers/bad/assets-upload-session', { json: { manifest: { '/a.txt': { hash, size: content.length } } } });
    expect(session.body.missing).toEqual([hash]);
    const wrong = await cinder.admin('PUT', `/workers/bad/assets-upload-session/${session.body.session}/${hash}`, { body: 'forged content!!' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toMatch(/sha256 is [0-9a-f]{64}, not/);
    // nothing kept: deploying now is refused as incomplete
    const early = await cinder.admin('PUT', '/workers/bad', { body: multipart({ assets: { session: session.body.session } }, {}) });
    expect(early.status).toBe(400);
    expect(early.body.error).toMatch(/still misses 1 file/);
    // the session belongs to its worker
    expect((await cinder.admin('PUT', `/workers/other/assets-upload-session/${session.body.session}/${hash}`, { body: content })).status).toBe(404);
    expect((await cinder.admin('PUT', `/workers/bad/assets-upload-session/${session.body.session}/${hash}`, { body: content })).status).toBe(201);
  });

  it('keeps the assets across a restart of cinder serve', async () => {
    await cinder.close();
    cinder = await startCinder({ dataDir: cinder.dataDir });
    client = new AdminClient(cinder.server.adminUrl, TOKEN);
    const res = await get('docs.example', '/docs/');
    expect(res.status).toBe(200);
    expect(res.body.equals(build.files['/docs/index.html'])).toBe(true);
    expect((await get('docs.example', '/data/blob.bin', { range: 'bytes=0-3' })).body.equals(build.files['/data/blob.bin'].subarray(0, 4))).toBe(true);
  });
});
