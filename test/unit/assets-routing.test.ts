// Which asset a request path reaches under each html_handling, and what not_found_handling and
// run_worker_first decide (model/assets.ts), on Cloudflare's documented example tree: /file.html
// and /folder/index.html. The serving itself is tested end to end in test/assets/.
import { describe, expect, it } from 'vitest';
import { matchAsset, notFoundIntent, parseRange, runsWorkerFirst, assetPathError, decodeAssetPath, DEFAULT_ASSETS_CONFIG, type AssetEntry, type HtmlHandling } from '../../src/model/assets.js';

const entry = (hash: string): AssetEntry => ({ hash: hash.padEnd(64, '0'), size: 1, contentType: 'text/html; charset=utf-8' });
const manifest = new Map<string, AssetEntry>([
  ['/file.html', entry('a')],
  ['/folder/index.html', entry('b')],
  ['/index.html', entry('c')],
  ['/404.html', entry('d')],
  ['/blog/404.html', entry('e')],
  ['/logo.png', entry('f')],
]);

function answer(handling: HtmlHandling, path: string): string {
  const intent = matchAsset(manifest, handling, path);
  if (intent.kind === 'asset') return `200 ${intent.path}`;
  if (intent.kind === 'redirect') return `307 ${intent.location}`;
  return '404';
}

describe('html_handling', () => {
  it('auto-trailing-slash: files without a slash, folder indexes with one', () => {
    const table = ['/file', '/file.html', '/file/', '/file/index', '/file/index.html', '/folder', '/folder.html', '/folder/', '/folder/index', '/folder/index.html', '/', '/index.html', '/logo.png', '/missing'];
    expect(Object.fromEntries(table.map((p) => [p, answer('auto-trailing-slash', p)]))).toEqual({
      '/file': '200 /file.html',
      '/file.html': '307 /file',
      '/file/': '307 /file',
      '/file/index': '307 /file',
      '/file/index.html': '307 /file',
      '/folder': '307 /folder/',
      '/folder.html': '307 /folder/',
      '/folder/': '200 /folder/index.html',
      '/folder/index': '307 /folder/',
      '/folder/index.html': '307 /folder/',
      '/': '200 /index.html',
      '/index.html': '307 /',
      '/logo.png': '200 /logo.png',
      '/missing': '404',
    });
  });

  it('force-trailing-slash: every HTML page with a slash', () => {
    const table = ['/file', '/file.html', '/file/', '/folder', '/folder/', '/folder/index.html', '/logo.png'];
    expect(Object.fromEntries(table.map((p) => [p, answer('force-trailing-slash', p)]))).toEqual({
      '/file': '307 /file/',
      '/file.html': '307 /file/',
      '/file/': '200 /file.html',
      '/folder': '307 /folder/',
      '/folder/': '200 /folder/index.html',
      '/folder/index.html': '307 /folder/',
      '/logo.png': '200 /logo.png',
    });
  });

  it('drop-trailing-slash: every HTML page without one', () => {
    const table = ['/file', '/file.html', '/file/', '/folder', '/folder/', '/folder/index.html', '/', '/index.html'];
    expect(Object.fromEntries(table.map((p) => [p, answer('drop-trailing-slash', p)]))).toEqual({
      '/file': '200 /file.html',
      '/file.html': '307 /file',
      '/file/': '307 /file',
      '/folder': '200 /folder/index.html',
      '/folder/': '307 /folder',
      '/folder/index.html': '307 /folder',
      '/': '200 /index.html',
      '/index.html': '307 /',
    });
  });

  it('none: exact paths only', () => {
    expect(['/file', '/file.html', '/folder/', '/folder/index.html'].map((p) => answer('none', p))).toEqual(['404', '200 /file.html', '404', '200 /folder/index.html']);
  });
});

describe('not_found_handling', () => {
  it('single-page-application serves /index.html with 200; 404-page the nearest 404.html up the path with 404', () => {
    expect(notFoundIntent(manifest, 'single-page-application', '/app/route')).toMatchObject({ kind: 'asset', path: '/index.html', status: 200 });
    expect(notFoundIntent(manifest, '404-page', '/blog/2024/post')).toMatchObject({ kind: 'asset', path: '/blog/404.html', status: 404 });
    expect(notFoundIntent(manifest, '404-page', '/shop/item')).toMatchObject({ kind: 'asset', path: '/404.html', status: 404 });
    expect(notFoundIntent(manifest, 'none', '/x')).toEqual({ kind: 'none' });
  });
});

describe('run_worker_first', () => {
  it('true, false, or patterns where "!" exclusions win', () => {
    const config = (runWorkerFirst: boolean | string[]) => ({ ...DEFAULT_ASSETS_CONFIG, runWorkerFirst });
    expect(runsWorkerFirst(config(true), '/anything')).toBe(true);
    expect(runsWorkerFirst(config(false), '/api/x')).toBe(false);
    const rules = config(['/api/*', '!/api/docs/*']);
    expect(['/api/users', '/api/docs/intro', '/app.js'].map((p) => runsWorkerFirst(rules, p))).toEqual([true, false, false]);
  });
});

describe('paths and ranges', () => {
  it('refuses manifest paths that are not plain absolute file paths', () => {
    for (const bad of ['index.html', '/a/../b', '/./a', '/a//b', '/a\\b', '/a\u0000b', '/dir/', `/${'x'.repeat(2000)}`]) expect(assetPathError(bad)).not.toBeNull();
    expect(assetPathError('/assets/app.3f2a1b.js')).toBeNull();
  });

  it('decodes request paths, refusing what decodes to traversal, NUL or a backslash', () => {
    expect(decodeAssetPath('/caf%C3%A9.html')).toBe('/café.html');
    for (const bad of ['/%2e%2e/secret', '/a/%2E%2E/b', '/a%00.js', '/a%5c..%5cb', '/%E0%A4%A']) expect(decodeAssetPath(bad)).toBeNull();
  });

  it('parses one byte range; several or malformed ones serve the whole body', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-5', 100)).toEqual({ start: 95, end: 99 });
    expect(parseRange('bytes=50-500', 100)).toEqual({ start: 50, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-1,5-6', 100)).toBeNull();
    expect(parseRange('items=0-1', 100)).toBeNull();
  });
});
