// Redirects, followed here rather than by undici so that every hop's target is checked before it
// is sent (see targets.ts). The rules are the Fetch spec's "HTTP-redirect fetch".

/** The Fetch spec's (and undici's) bound on hops. */
export const MAX_REDIRECTS = 20;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// Headers that describe a request body, dropped when a redirect drops the body.
const BODY_HEADERS = new Set(['content-encoding', 'content-language', 'content-location', 'content-type', 'content-length']);
// Credentials are not carried to another origin (the spec drops Authorization; undici also Cookie
// and Proxy-Authorization).
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

export interface Hop {
  url: URL;
  method: string;
  headers: [string, string][];
  /** a body that can be sent again (bytes in hand); a stream cannot */
  body: string | Uint8Array | AsyncIterable<Uint8Array> | undefined;
}

export function isRedirect(status: number): boolean {
  return REDIRECT_STATUSES.has(status);
}

/**
 * The next hop after a redirect response, or null when the response is final (no Location). Throws
 * a TypeError for what the spec calls a network error.
 */
export function nextHop(hop: Hop, status: number, location: string | null, count: number): Hop | null {
  if (location === null) return null;
  let url: URL;
  try {
    url = new URL(location, hop.url);
  } catch {
    throw new TypeError(`fetch failed: the redirect Location "${location}" is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`fetch failed: redirect to a ${url.protocol} URL`);
  if (count >= MAX_REDIRECTS) throw new TypeError(`fetch failed: more than ${MAX_REDIRECTS} redirects`);
  let { method, body } = hop;
  let headers = hop.headers;
  if (((status === 301 || status === 302) && method === 'POST') || (status === 303 && method !== 'GET' && method !== 'HEAD')) {
    method = 'GET';
    body = undefined;
    headers = headers.filter(([name]) => !BODY_HEADERS.has(name.toLowerCase()));
  }
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) {
    throw new TypeError('fetch failed: cannot follow a redirect with a streamed request body (it was sent already)');
  }
  if (url.origin !== hop.url.origin) headers = headers.filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase()));
  // A fragment-less Location keeps the current URL's fragment.
  if (!url.hash && hop.url.hash) url.hash = hop.url.hash;
  return { url, method, headers, body };
}
