// Static assets as Workers Static Assets has them: a version's manifest maps request paths to
// content-addressed files, and its config says how a request path finds one (html_handling), what
// answers when none does (not_found_handling) and which paths reach the worker before the assets
// (run_worker_first). Pure functions over plain data: the data plane serves what they decide, the
// ASSETS binding answers the same way, and `cinder dev` uses them over a directory.

/** Cloudflare's per-file limit. */
export const MAX_ASSET_FILE_BYTES = 25 * 1024 * 1024;
/** Files per version (Cloudflare's free-plan count; the operator may raise it). */
export const DEFAULT_MAX_ASSET_COUNT = 20_000;
/** A manifest path, in characters. */
export const MAX_ASSET_PATH_LENGTH = 1024;

export const NOT_FOUND_HANDLING = ['none', 'single-page-application', '404-page'] as const;
export const HTML_HANDLING = ['auto-trailing-slash', 'force-trailing-slash', 'drop-trailing-slash', 'none'] as const;
export type NotFoundHandling = (typeof NOT_FOUND_HANDLING)[number];
export type HtmlHandling = (typeof HTML_HANDLING)[number];

export interface AssetsConfig {
  htmlHandling: HtmlHandling;
  notFoundHandling: NotFoundHandling;
  /** true: every request reaches the worker first; patterns: the paths that do ("!" excludes) */
  runWorkerFirst: boolean | string[];
}

export const DEFAULT_ASSETS_CONFIG: AssetsConfig = { htmlHandling: 'auto-trailing-slash', notFoundHandling: 'none', runWorkerFirst: false };

export interface AssetEntry {
  /** hex sha256 of the content: the blob's name, and the ETag */
  hash: string;
  size: number;
  contentType: string;
}

/** Where an entry's bytes are read from (the asset store, or `cinder dev`'s directory). */
export interface AssetBlobSource {
  /** the bytes of `entry`, or of bytes start..end (inclusive) of it */
  read(entry: AssetEntry, range?: { start: number; end: number }): AsyncIterable<Uint8Array>;
}

/** A version's assets as the data plane and the ASSETS binding see them. */
export interface WorkerAssets {
  config: AssetsConfig;
  /** request path ("/index.html") -> entry */
  manifest: Map<string, AssetEntry>;
  blobs: AssetBlobSource;
  /** sha256 of the manifest (what the version references) */
  manifestHash: string;
}

/** Why `path` cannot be a manifest path, or null. Paths are "/"-separated, absolute, normalised:
 *  no "." or ".." segment, no empty segment, no backslash or control character. */
export function assetPathError(path: unknown): string | null {
  if (typeof path !== 'string' || !path.startsWith('/')) return 'must be a string starting with "/"';
  if (path.length > MAX_ASSET_PATH_LENGTH) return `is longer than ${MAX_ASSET_PATH_LENGTH} characters`;
  if (path.endsWith('/')) return 'names a directory (ends with "/")';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(path)) return 'holds a backslash or a control character';
  for (const segment of path.slice(1).split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return 'holds an empty, "." or ".." segment';
  }
  return null;
}

export const isSha256 = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);

// Content types: text gets its charset, as Cloudflare serves it.
const CHARSET_TYPES = /^(text\/|application\/(javascript|json|xml|manifest\+json|ld\+json)$|image\/svg\+xml$)/;
export function withCharset(type: string): string {
  return CHARSET_TYPES.test(type) ? `${type}; charset=utf-8` : type;
}

// --- which asset a request path reaches ---------------------------------------------------------

export type AssetIntent = { kind: 'asset'; path: string; entry: AssetEntry; status: 200 | 404 } | { kind: 'redirect'; location: string } | { kind: 'none' };

type Lookup = (path: string) => AssetEntry | undefined;

/**
 * What a decoded request path reaches under html_handling: an asset, a redirect (307) to the
 * canonical path, or nothing. not_found_handling is separate (notFoundIntent), since with a worker
 * an unmatched request goes to the worker instead. A redirect is only made when its destination
 * serves the same file (so no handling can loop).
 */
export function matchAsset(manifest: Map<string, AssetEntry>, handling: HtmlHandling, pathname: string): AssetIntent {
  const lookup: Lookup = (path) => manifest.get(path);
  return match(lookup, handling, pathname, false);
}

function serve(lookup: Lookup, path: string): AssetIntent | null {
  const entry = lookup(path);
  return entry ? { kind: 'asset', path, entry, status: 200 } : null;
}

function match(lookup: Lookup, handling: HtmlHandling, p: string, noRedirects: boolean): AssetIntent {
  // A redirect from `file`'s URL to `destination`, when `destination` itself is no file and
  // resolves (without redirects) to that same file.
  const redirect = (file: string, destination: string): AssetIntent | null => {
    if (noRedirects) return null;
    const entry = lookup(file);
    if (!entry || lookup(destination)) return null;
    const there = match(lookup, handling, destination, true);
    return there.kind === 'asset' && there.path === file ? { kind: 'redirect', location: destination } : null;
  };
  const first = (...options: (() => AssetIntent | null)[]): AssetIntent => {
    for (const option of options) {
      const found = option();
      if (found) return found;
    }
    return { kind: 'none' };
  };
  const cut = (suffix: string) => p.slice(0, -suffix.length);

  switch (handling) {
    case 'none':
      return serve(lookup, p) ?? { kind: 'none' };
    case 'auto-trailing-slash':
      if (p.endsWith('/index')) return first(() => serve(lookup, p), () => redirect(`${p}.html`, cut('index')), () => redirect(`${cut('/index')}.html`, cut('/index')));
      if (p.endsWith('/index.html')) return first(() => redirect(p, cut('index.html')), () => redirect(`${cut('/index.html')}.html`, cut('/index.html')), () => serve(lookup, p));
      if (p.endsWith('/')) return first(() => serve(lookup, `${p}index.html`), () => redirect(`${cut('/')}.html`, cut('/')), () => serve(lookup, p));
      if (p.endsWith('.html')) return first(() => redirect(p, cut('.html')), () => redirect(`${cut('.html')}/index.html`, `${cut('.html')}/`), () => serve(lookup, p));
      return first(() => serve(lookup, p), () => serve(lookup, `${p}.html`), () => redirect(`${p}/index.html`, `${p}/`));
    case 'force-trailing-slash':
      if (p.endsWith('/index')) return first(() => serve(lookup, p), () => redirect(`${p}.html`, cut('index')), () => redirect(`${cut('/index')}.html`, cut('index')));
      if (p.endsWith('/index.html')) return first(() => redirect(p, cut('index.html')), () => redirect(`${cut('/index.html')}.html`, cut('index.html')), () => serve(lookup, p));
      if (p.endsWith('/')) return first(() => serve(lookup, `${p}index.html`), () => serve(lookup, `${cut('/')}.html`), () => serve(lookup, p));
      if (p.endsWith('.html')) return first(() => redirect(p, `${cut('.html')}/`), () => redirect(`${cut('.html')}/index.html`, `${cut('.html')}/`), () => serve(lookup, p));
      return first(() => serve(lookup, p), () => redirect(`${p}.html`, `${p}/`), () => redirect(`${p}/index.html`, `${p}/`));
    case 'drop-trailing-slash':
      if (p === '/') return first(() => serve(lookup, '/index.html'));
      if (p.endsWith('/index')) return first(() => serve(lookup, p), () => redirect(`${p}.html`, cut('/index') || '/'), () => redirect(`${cut('/index')}.html`, cut('/index') || '/'));
      if (p.endsWith('/index.html')) return first(() => redirect(p, cut('/index.html') || '/'), () => redirect(`${cut('/index.html')}.html`, cut('/index.html') || '/'), () => serve(lookup, p));
      if (p.endsWith('/')) return first(() => redirect(`${p}index.html`, cut('/')), () => redirect(`${cut('/')}.html`, cut('/')), () => serve(lookup, p));
      if (p.endsWith('.html')) return first(() => redirect(p, cut('.html')), () => redirect(`${cut('.html')}/index.html`, cut('.html')), () => serve(lookup, p));
      return first(() => serve(lookup, p), () => serve(lookup, `${p}.html`), () => serve(lookup, `${p}/index.html`));
  }
}

/** What not_found_handling serves for an unmatched path: /index.html (200) for an SPA, the nearest
 *  404.html up the path (404) for 404-page; nothing otherwise. */
export function notFoundIntent(manifest: Map<string, AssetEntry>, handling: NotFoundHandling, pathname: string): AssetIntent {
  if (handling === 'single-page-application') {
    const entry = manifest.get('/index.html');
    return entry ? { kind: 'asset', path: '/index.html', entry, status: 200 } : { kind: 'none' };
  }
  if (handling === '404-page') {
    let dir = pathname;
    while (dir.length > 0) {
      dir = dir.slice(0, dir.lastIndexOf('/'));
      const path = `${dir}/404.html`;
      const entry = manifest.get(path);
      if (entry) return { kind: 'asset', path, entry, status: 404 };
    }
  }
  return { kind: 'none' };
}

/** The request path as manifest paths are spelled: percent-decoded, or null when it cannot be (or
 *  decodes to something no manifest path is: a NUL, a backslash, a "." or ".." segment). */
export function decodeAssetPath(rawPath: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return null;
  }
  // eslint-disable-next-line no-control-regex
  if (!path.startsWith('/') || /[\u0000\\]/.test(path)) return null;
  for (const segment of path.split('/')) if (segment === '.' || segment === '..') return null;
  return path;
}

// --- run_worker_first ---------------------------------------------------------------------------

/** Why a run_worker_first pattern cannot be used, or null. */
export function runWorkerFirstPatternError(pattern: unknown): string | null {
  if (typeof pattern !== 'string') return 'must be a string';
  const body = pattern.startsWith('!') ? pattern.slice(1) : pattern;
  if (!body.startsWith('/')) return 'must start with "/" (or "!/" to exclude)';
  if (body.length > 256) return 'is longer than 256 characters';
  return null;
}

const compiledPatterns = new WeakMap<string[], { include: RegExp[]; exclude: RegExp[] }>();

function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
}

/** Does a request for `pathname` go to the worker before the assets? Exclusions ("!/x/*") win. */
export function runsWorkerFirst(config: AssetsConfig, pathname: string): boolean {
  const rule = config.runWorkerFirst;
  if (typeof rule === 'boolean') return rule;
  let compiled = compiledPatterns.get(rule);
  if (!compiled) {
    compiled = { include: [], exclude: [] };
    for (const pattern of rule) {
      if (pattern.startsWith('!')) compiled.exclude.push(globToRegExp(pattern.slice(1)));
      else compiled.include.push(globToRegExp(pattern));
    }
    compiledPatterns.set(rule, compiled);
  }
  if (compiled.exclude.some((re) => re.test(pathname))) return false;
  return compiled.include.some((re) => re.test(pathname));
}

// --- the HTTP answer for an asset ----------------------------------------------------------------

/** What to send for an asset: status, headers, and the byte range of the entry (null: no body). */
export interface AssetAnswer {
  status: number;
  headers: [string, string][];
  range: { start: number; end: number } | null;
}

const CACHE_CONTROL = 'public, max-age=0, must-revalidate';

/** The answer to a GET or HEAD for `entry` (`status`: 200, or 404 for a 404 page), honouring
 *  If-None-Match (304) and a single byte Range (206, or 416 when unsatisfiable). */
export function assetAnswer(method: string, header: (name: string) => string | null, entry: AssetEntry, status: number): AssetAnswer {
  const etag = `"${entry.hash}"`;
  const headers: [string, string][] = [
    ['content-type', entry.contentType],
    ['etag', etag],
    ['cache-control', CACHE_CONTROL],
  ];
  if (status === 200) {
    const ifNoneMatch = header('if-none-match');
    if (ifNoneMatch !== null && etagMatches(ifNoneMatch, entry.hash)) return { status: 304, headers: headers.slice(1), range: null };
    headers.push(['accept-ranges', 'bytes']);
    const rangeHeader = header('range');
    if (rangeHeader !== null) {
      const range = parseRange(rangeHeader, entry.size);
      if (range === 'unsatisfiable') return { status: 416, headers: [['content-range', `bytes */${entry.size}`], ...headers.slice(1)], range: null };
      if (range) {
        headers.push(['content-range', `bytes ${range.start}-${range.end}/${entry.size}`], ['content-length', String(range.end - range.start + 1)]);
        return { status: 206, headers, range: method === 'HEAD' ? null : range };
      }
    }
  }
  headers.push(['content-length', String(entry.size)]);
  const whole = entry.size > 0 ? { start: 0, end: entry.size - 1 } : null;
  return { status, headers, range: method === 'HEAD' ? null : whole };
}

function etagMatches(header: string, hash: string): boolean {
  if (header.trim() === '*') return true;
  for (const part of header.split(',')) {
    const tag = part.trim().replace(/^W\//, '');
    if (tag === `"${hash}"`) return true;
  }
  return false;
}

/** One byte range of a body of `size` bytes; null when the header is not one range (served whole,
 *  as RFC 9110 allows); 'unsatisfiable' when it is one that lies past the end. */
export function parseRange(header: string, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

// --- a request against a version's assets -------------------------------------------------------

export interface AssetRequest {
  method: string;
  /** the raw path, as it came (percent-encoded) */
  path: string;
  /** "?..." or "" */
  search: string;
  header(name: string): string | null;
}

/** What a request gets from the assets: the worker instead, or an answer (with the entry whose
 *  bytes make its body, if any). */
export type AssetRouting = { kind: 'worker' } | { kind: 'respond'; status: number; headers: [string, string][]; entry: AssetEntry | null; range: { start: number; end: number } | null };

const respond = (status: number, headers: [string, string][] = []): AssetRouting => ({ kind: 'respond', status, headers, entry: null, range: null });

/**
 * Route a request for a worker with assets as Cloudflare does. `hasWorker`: the version has code
 * (the data plane), or not (an assets-only worker, and `env.ASSETS.fetch`, which never reaches the
 * worker). With a worker: run_worker_first paths go to it; an asset that matches is served; an
 * unmatched request goes to the worker, except a browser navigation under single-page-application,
 * which gets /index.html. Without: not_found_handling answers what matches nothing.
 */
export function routeAssetRequest(assets: WorkerAssets, request: AssetRequest, hasWorker: boolean): AssetRouting {
  const { config, manifest } = assets;
  if (hasWorker && config.runWorkerFirst !== false && runsWorkerFirst(config, request.path)) return { kind: 'worker' };
  const readable = request.method === 'GET' || request.method === 'HEAD';
  if (!readable) return hasWorker ? { kind: 'worker' } : respond(405, [['allow', 'GET, HEAD']]);
  const pathname = decodeAssetPath(request.path);
  if (pathname === null) return hasWorker ? { kind: 'worker' } : respond(404);
  let intent = matchAsset(manifest, config.htmlHandling, pathname);
  if (intent.kind === 'redirect') return respond(307, [['location', `${encodeURI(intent.location)}${request.search}`]]);
  if (intent.kind === 'none') {
    if (hasWorker && !(config.notFoundHandling === 'single-page-application' && request.header('sec-fetch-mode') === 'navigate')) return { kind: 'worker' };
    intent = notFoundIntent(manifest, config.notFoundHandling, pathname);
    if (intent.kind !== 'asset') return respond(404);
  }
  if (intent.kind !== 'asset') return respond(404);
  const answer = assetAnswer(request.method, request.header, intent.entry, intent.status);
  return { kind: 'respond', status: answer.status, headers: answer.headers, entry: answer.range ? intent.entry : null, range: answer.range };
}
