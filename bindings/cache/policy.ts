// The HTTP caching rules of the Cache API as Cloudflare applies them to put() and match():
// what may be stored and for how long (Cache-Control, Expires, Set-Cookie, Cloudflare's default
// edge TTLs by status), which stored variant answers a request (Vary), and how a stored response
// answers a conditional or ranged request (If-None-Match, If-Modified-Since, Range).

export type HeaderList = [string, string][];

function header(headers: HeaderList, name: string): string | undefined {
  for (const [key, value] of headers) if (key.toLowerCase() === name) return value;
  return undefined;
}

/** Cache-Control directives, lower-cased names; a directive without a value maps to ''. */
export function cacheControl(headers: HeaderList): Map<string, string> {
  const directives = new Map<string, string>();
  const value = header(headers, 'cache-control');
  if (!value) return directives;
  for (const part of value.split(',')) {
    const [name, ...rest] = part.split('=');
    const key = name.trim().toLowerCase();
    if (key) directives.set(key, rest.join('=').trim().replace(/^"(.*)"$/, '$1'));
  }
  return directives;
}

/** Cloudflare's edge TTL for a status when the response says nothing (seconds); absent: not cached. */
const DEFAULT_TTL_BY_STATUS = new Map([
  [200, 7200], [206, 7200], [301, 7200],
  [302, 1200], [303, 1200],
  [404, 180], [410, 180],
]);

export interface Storable {
  /** seconds the response stays fresh */
  ttl: number;
  /** the headers to keep (Set-Cookie dropped where Cache-Control allows storing without it) */
  headers: HeaderList;
}

/** Whether a response may be stored, for how long and with which headers; null: not stored. */
export function storable(status: number, headers: HeaderList, now: number): Storable | null {
  const cc = cacheControl(headers);
  if (cc.has('no-store') || cc.has('no-cache')) return null;
  let kept = headers;
  if (cc.has('private')) {
    // `private=Set-Cookie` (Cloudflare): store, without the named headers.
    const named = cc.get('private')!.split(/\s*,\s*|\s+/).filter(Boolean).map((n) => n.toLowerCase());
    if (named.length === 0) return null;
    kept = headers.filter(([name]) => !named.includes(name.toLowerCase()));
  }
  // Responses that set cookies are never cached (their content is likely per user).
  if (header(kept, 'set-cookie') !== undefined) return null;
  let ttl: number | undefined;
  for (const directive of ['s-maxage', 'max-age']) {
    if (!cc.has(directive)) continue;
    const seconds = Number(cc.get(directive));
    if (Number.isInteger(seconds) && seconds >= 0) {
      ttl = seconds;
      break;
    }
  }
  if (ttl === undefined) {
    const expires = header(kept, 'expires');
    if (expires !== undefined) {
      const at = Date.parse(expires);
      ttl = Number.isNaN(at) ? 0 : Math.floor((at - now) / 1000);
    }
  }
  if (ttl === undefined) ttl = DEFAULT_TTL_BY_STATUS.get(status);
  if (ttl === undefined || ttl <= 0) return null;
  return { ttl, headers: kept };
}

/** The request header values a response varies on (null when it varies on `*`). */
export function varyKey(responseHeaders: HeaderList, requestHeaders: HeaderList): Record<string, string> | null {
  const vary = header(responseHeaders, 'vary');
  const key: Record<string, string> = {};
  if (!vary) return key;
  for (const raw of vary.split(',')) {
    const name = raw.trim().toLowerCase();
    if (!name) continue;
    if (name === '*') return null;
    key[name] = (header(requestHeaders, name) ?? '').trim();
  }
  return key;
}

/** Does a stored variant answer a request with these headers? */
export function varyMatches(stored: Record<string, string>, requestHeaders: HeaderList): boolean {
  for (const [name, value] of Object.entries(stored)) {
    if ((header(requestHeaders, name) ?? '').trim() !== value) return false;
  }
  return true;
}

export interface Answer {
  status: number;
  headers: HeaderList;
  body: Buffer | null;
}

function etagMatches(condition: string, etag: string): boolean {
  const weak = (tag: string) => tag.trim().replace(/^W\//, '');
  return condition.split(',').some((tag) => tag.trim() === '*' || weak(tag) === weak(etag));
}

const NOT_MODIFIED_DROPS = new Set(['content-length', 'content-type', 'content-encoding', 'content-range', 'transfer-encoding']);

/**
 * The stored response as the answer to a request: 304 when its conditions say the caller has it,
 * 206 (or 416) for a single byte range of a 200, else the stored response.
 */
export function answer(stored: { status: number; headers: HeaderList; body: Buffer }, requestHeaders: HeaderList): Answer {
  const headers: HeaderList = [...stored.headers.filter(([name]) => name.toLowerCase() !== 'content-length'), ['cf-cache-status', 'HIT']];
  const etag = header(stored.headers, 'etag');
  const ifNoneMatch = header(requestHeaders, 'if-none-match');
  const lastModified = header(stored.headers, 'last-modified');
  const ifModifiedSince = header(requestHeaders, 'if-modified-since');
  const notModified =
    ifNoneMatch !== undefined
      ? etag !== undefined && etagMatches(ifNoneMatch, etag)
      : ifModifiedSince !== undefined && lastModified !== undefined && Date.parse(lastModified) <= Date.parse(ifModifiedSince);
  if (notModified && stored.status === 200) {
    return { status: 304, headers: headers.filter(([name]) => !NOT_MODIFIED_DROPS.has(name.toLowerCase())), body: null };
  }
  const range = header(requestHeaders, 'range');
  if (range !== undefined && stored.status === 200) {
    const size = stored.body.byteLength;
    const parsed = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    if (parsed && (parsed[1] !== '' || parsed[2] !== '')) {
      let start: number;
      let end: number;
      if (parsed[1] === '') {
        start = Math.max(0, size - Number(parsed[2]));
        end = size - 1;
      } else {
        start = Number(parsed[1]);
        end = parsed[2] === '' ? size - 1 : Math.min(Number(parsed[2]), size - 1);
      }
      if (start >= size || start > end) {
        return { status: 416, headers: [...headers.filter(([n]) => n.toLowerCase() !== 'content-type'), ['content-range', `bytes */${size}`]], body: Buffer.alloc(0) };
      }
      return { status: 206, headers: [...headers, ['content-range', `bytes ${start}-${end}/${size}`]], body: stored.body.subarray(start, end + 1) };
    }
  }
  return { status: stored.status, headers, body: stored.body };
}
