// node:url: the WHATWG URL and URLSearchParams (the sandbox's own), the file: URL helpers, and
// the legacy url.parse / url.format / url.resolve, which workerd also offers. The legacy parser
// here splits an absolute URL the way Node's does for the common cases (protocol, auth, host,
// port, path, query, hash) and keeps a relative reference as a path.
import { URL, URLSearchParams } from './web.js';

export { URL, URLSearchParams };

function invalidArg(name: string, expected: string): TypeError {
  const error = new TypeError(`The "${name}" argument must be ${expected}`) as TypeError & { code: string };
  error.code = 'ERR_INVALID_ARG_TYPE';
  return error;
}

/** file:///a/b%20c -> /a/b c (POSIX). */
export function fileURLToPath(input: string | URL): string {
  const url = typeof input === 'string' ? new URL(input) : input;
  if (!(url instanceof URL)) throw invalidArg('path', 'of type string or an instance of URL');
  if (url.protocol !== 'file:') {
    const error = new TypeError('The URL must be of scheme file') as TypeError & { code: string };
    error.code = 'ERR_INVALID_URL_SCHEME';
    throw error;
  }
  if (url.hostname !== '') {
    const error = new TypeError(`File URL host must be "localhost" or empty on linux`) as TypeError & { code: string };
    error.code = 'ERR_INVALID_FILE_URL_HOST';
    throw error;
  }
  const pathname = url.pathname;
  if (/%2f/i.test(pathname)) {
    const error = new TypeError('File URL path must not include encoded / characters') as TypeError & { code: string };
    error.code = 'ERR_INVALID_FILE_URL_PATH';
    throw error;
  }
  return decodeURIComponent(pathname);
}

/** /a/b c -> file:///a/b%20c; a relative path resolves against '/bundle' (process.cwd()). */
export function pathToFileURL(path: string): URL {
  if (typeof path !== 'string') throw invalidArg('path', 'of type string');
  let resolved = path.startsWith('/') ? path : `/bundle/${path}`;
  const segments: string[] = [];
  for (const part of resolved.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') segments.pop();
    else segments.push(part);
  }
  resolved = '/' + segments.join('/') + (path.endsWith('/') && segments.length ? '/' : '');
  const encoded = resolved.replace(/%/g, '%25').replace(/\\/g, '%5C').replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/\t/g, '%09').replace(/#/g, '%23').replace(/\?/g, '%3F');
  return new URL(`file://${encoded}`);
}

/** The options object http.request() takes, from a URL. */
export function urlToHttpOptions(url: URL): Record<string, unknown> {
  const options: Record<string, unknown> = {
    protocol: url.protocol,
    hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    hash: url.hash,
    search: url.search,
    pathname: url.pathname,
    path: `${url.pathname || ''}${url.search || ''}`,
    href: url.href,
  };
  if (url.port !== '') options.port = Number(url.port);
  if (url.username || url.password) options.auth = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  return options;
}

export function domainToASCII(domain: string): string {
  try {
    return new URL(`http://${domain}`).hostname;
  } catch {
    return '';
  }
}

export function domainToUnicode(domain: string): string {
  // The sandbox's URL keeps hosts in their ASCII form; a punycode label stays as it is.
  try {
    return new URL(`http://${domain}`).hostname;
  } catch {
    return '';
  }
}

/** The legacy url.parse() result. */
export class Url {
  protocol: string | null = null;
  slashes: boolean | null = null;
  auth: string | null = null;
  host: string | null = null;
  port: string | null = null;
  hostname: string | null = null;
  hash: string | null = null;
  search: string | null = null;
  query: string | null | Record<string, string | string[]> = null;
  pathname: string | null = null;
  path: string | null = null;
  href = '';
}

const PROTOCOL = /^([a-z0-9.+-]+:)/i;
const SLASHED = new Set(['http:', 'https:', 'ftp:', 'gopher:', 'file:', 'ws:', 'wss:']);

function parseQuery(search: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = Object.create(null);
  for (const [key, value] of new URLSearchParams(search)) {
    const existing = query[key];
    if (existing === undefined) query[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else query[key] = [existing, value];
  }
  return query;
}

/** Legacy url.parse(urlString, parseQueryString, slashesDenoteHost). */
export function parse(input: string, parseQueryString = false, slashesDenoteHost = false): Url {
  if (typeof input !== 'string') throw invalidArg('url', 'of type string');
  const result = new Url();
  let rest = input.trim();
  const hashAt = rest.indexOf('#');
  if (hashAt !== -1) {
    result.hash = rest.slice(hashAt);
    rest = rest.slice(0, hashAt);
  }
  const queryAt = rest.indexOf('?');
  if (queryAt !== -1) {
    result.search = rest.slice(queryAt);
    result.query = rest.slice(queryAt + 1);
    rest = rest.slice(0, queryAt);
  } else if (parseQueryString) {
    result.search = '';
    result.query = {};
  }
  const protocol = PROTOCOL.exec(rest);
  if (protocol) {
    result.protocol = protocol[1].toLowerCase();
    rest = rest.slice(protocol[1].length);
  }
  if (slashesDenoteHost || protocol || /^\/\/[^@/]+@[^@/]+/.test(rest)) {
    const slashes = rest.startsWith('//');
    if (slashes && !(result.protocol === 'javascript:')) {
      rest = rest.slice(2);
      result.slashes = true;
    }
  }
  if (result.slashes) {
    const end = rest.search(/[/\\]/);
    let authority = end === -1 ? rest : rest.slice(0, end);
    rest = end === -1 ? '' : rest.slice(end);
    const at = authority.lastIndexOf('@');
    if (at !== -1) {
      result.auth = decodeURIComponent(authority.slice(0, at));
      authority = authority.slice(at + 1);
    }
    const portMatch = /:([0-9]*)$/.exec(authority);
    if (portMatch) {
      if (portMatch[1] !== '') result.port = portMatch[1];
      authority = authority.slice(0, authority.length - portMatch[0].length);
    }
    result.hostname = authority.toLowerCase();
    result.host = result.hostname + (result.port ? `:${result.port}` : '');
    if (result.hostname.startsWith('[') && result.hostname.endsWith(']')) result.hostname = result.hostname.slice(1, -1);
  }
  if (rest !== '') result.pathname = rest;
  else if (result.slashes && result.hostname !== null && result.protocol && SLASHED.has(result.protocol)) result.pathname = '/';
  if (parseQueryString && typeof result.query === 'string') result.query = parseQuery(result.query);
  if (result.pathname !== null || result.search !== null) result.path = (result.pathname ?? '') + (result.search ?? '');
  result.href = format(result);
  return result;
}

/** Legacy url.format(urlObject | URL | string). */
export function format(input: string | URL | Partial<Url> | null, options?: { auth?: boolean; fragment?: boolean; search?: boolean }): string {
  if (typeof input === 'string') return format(parse(input));
  if (input instanceof URL) {
    const copy = new URL(input.href);
    if (options?.auth === false) {
      copy.username = '';
      copy.password = '';
    }
    if (options?.fragment === false) copy.hash = '';
    if (options?.search === false) copy.search = '';
    return copy.href;
  }
  if (typeof input !== 'object' || input === null) throw invalidArg('urlObject', 'one of type object or string');
  let auth = input.auth ? encodeURIComponent(input.auth).replace(/%3A/i, ':') + '@' : '';
  let protocol = input.protocol ?? '';
  if (protocol && !protocol.endsWith(':')) protocol += ':';
  let host = '';
  if (input.host) host = auth + input.host;
  else if (input.hostname) {
    host = auth + (input.hostname.includes(':') ? `[${input.hostname}]` : input.hostname) + (input.port ? `:${input.port}` : '');
  }
  auth = '';
  let pathname = input.pathname ?? '';
  let search = input.search ?? '';
  if (!search && input.query && typeof input.query === 'object') {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(input.query)) {
      for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
    }
    const text = params.toString();
    if (text) search = `?${text}`;
  }
  if (search && !search.startsWith('?')) search = `?${search}`;
  let hash = input.hash ?? '';
  if (hash && !hash.startsWith('#')) hash = `#${hash}`;
  if (input.slashes || (protocol && SLASHED.has(protocol) && host !== '') || (protocol === 'file:' && host === '' && pathname.startsWith('/'))) {
    host = `//${host}`;
    if (pathname && !pathname.startsWith('/')) pathname = `/${pathname}`;
  }
  pathname = pathname.replace(/[?#]/g, (c: string) => encodeURIComponent(c));
  search = search.replace(/#/g, '%23');
  return protocol + host + pathname + search + hash;
}

/** Legacy url.resolve(from, to), as a browser resolves a link. */
export function resolve(from: string, to: string): string {
  const base = new URL(from, 'resolve://');
  const resolved = new URL(to, base);
  if (resolved.protocol === 'resolve:') {
    const { pathname, search, hash } = resolved;
    return pathname + search + hash;
  }
  return resolved.href;
}

export default { URL, URLSearchParams, Url, parse, format, resolve, fileURLToPath, pathToFileURL, urlToHttpOptions, domainToASCII, domainToUnicode };
