// A real SPA-like build directory (what `vite build` leaves): index.html, hashed JS and CSS under
// assets/, an image, a nested docs folder, a 404 page, a file .assetsignore leaves out, and a
// binary large enough for ranges. And a raw HTTP GET that sends the request target as written
// (fetch and undici normalise "..").
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface BuildDir {
  root: string;
  dist: string;
  files: Record<string, Buffer>;
  sha256(path: string): string;
}

export function spaBuild(): BuildDir {
  const root = mkdtempSync(join(tmpdir(), 'cinder-assets-'));
  const dist = join(root, 'dist');
  const files: Record<string, Buffer> = {
    '/index.html': Buffer.from('<!doctype html><html><head><script type="module" src="/assets/app.3f2a1b9c.js"></script><link rel="stylesheet" href="/assets/style.77aa01.css"></head><body><div id="app"></div></body></html>\n'),
    '/404.html': Buffer.from('<!doctype html><h1>Not found (custom)</h1>\n'),
    '/about.html': Buffer.from('<!doctype html><h1>About</h1>\n'),
    '/docs/index.html': Buffer.from('<!doctype html><h1>Docs</h1>\n'),
    '/docs/guide/install.html': Buffer.from('<!doctype html><h1>Install</h1>\n'),
    '/assets/app.3f2a1b9c.js': Buffer.from('const app=document.getElementById("app");app.textContent="hello from the SPA";export{app};\n'),
    '/assets/style.77aa01.css': Buffer.from('body{font-family:system-ui}#app{color:#333}\n'),
    '/images/logo.svg': Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n'),
    '/data/blob.bin': randomBytes(300 * 1024),
  };
  for (const [path, bytes] of Object.entries(files)) {
    mkdirSync(dirname(join(dist, path)), { recursive: true });
    writeFileSync(join(dist, path), bytes);
  }
  // Left out of the upload by .assetsignore, and a file beside (not under) the directory.
  writeFileSync(join(dist, 'assets', 'app.3f2a1b9c.js.map'), '{"version":3}');
  writeFileSync(join(dist, '.assetsignore'), '# source maps stay private\n*.map\n');
  writeFileSync(join(root, 'secret.txt'), 'outside the assets directory');
  return { root, dist, files, sha256: (path) => createHash('sha256').update(files[path]).digest('hex') };
}

/** GET with the request target sent exactly as given. */
export function rawGet(base: string, target: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method: 'GET', path: target, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}
