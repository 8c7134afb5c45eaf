// Request (Fetch §5.4), shaped like workerd's: it extends Body and exposes method, url, headers,
// redirect, fetcher, signal, cf, integrity, keepalive and cache. Browser-only members (mode,
// credentials, referrer, destination, ...) do not exist at the edge, in workerd or here.
import { LazyCf } from './cf.js';
import { AbortController, isAbortSignal, type AbortSignal } from './abort.js';
import { Body, bodyUnusable, bytesSource, cloneBody, extractBody, hasBody, initBody, takeBody, type BodyInit, type BodySource } from './body.js';
import { enumerableMembers, toByteString, toUSVString } from './fetch-idl.js';
import { copyHeaders, createHeaders, Headers, HTTP_TOKEN, type HeadersInit } from './headers.js';
import { INTERNAL, setToStringTag, toDictionary } from './idl.js';
import { ReadableStream } from './streams.js';
import { parseURL, serializeURL } from './url.js';

export type RequestRedirect = 'follow' | 'error' | 'manual';
export type RequestCache = 'default' | 'no-store' | 'reload' | 'no-cache' | 'force-cache' | 'only-if-cached';

export interface RequestInit {
  body?: BodyInit | null;
  cache?: RequestCache;
  cf?: unknown;
  headers?: HeadersInit;
  integrity?: string;
  keepalive?: boolean;
  method?: string;
  redirect?: RequestRedirect;
  signal?: AbortSignal | null;
}

const REDIRECT_MODES: readonly string[] = ['follow', 'error', 'manual'];
const CACHE_MODES: readonly string[] = ['default', 'no-store', 'reload', 'no-cache', 'force-cache', 'only-if-cached'];
// Fetch "normalize a method": only these six are uppercased; anything else keeps its case.
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

/** Everything a Request is made of, so that clone() and the wire can build one directly. */
interface RequestParts {
  method: string;
  url: string;
  headers: Headers;
  body: BodySource | null;
  redirect: RequestRedirect;
  signal: AbortSignal | null;
  cf: unknown;
  integrity: string;
  keepalive: boolean;
  cache: RequestCache;
}

/** Passed as `input` (with the parts as `init`) to build a Request without re-validating. */
const FROM_PARTS = Symbol('cinder.request-from-parts');

export class Request extends Body {
  #method: string;
  #url: string;
  #headers: Headers;
  #redirect: RequestRedirect;
  #signal: AbortSignal | null;
  #cf: unknown;
  #integrity: string;
  #keepalive: boolean;
  #cache: RequestCache;

  constructor(input: RequestInfo, init?: RequestInit) {
    const parts = (input as unknown) === FROM_PARTS ? (init as unknown as RequestParts) : buildParts(input, init, arguments.length);
    super(INTERNAL);
    this.#method = parts.method;
    this.#url = parts.url;
    this.#headers = parts.headers;
    this.#redirect = parts.redirect;
    this.#signal = parts.signal;
    this.#cf = parts.cf;
    this.#integrity = parts.integrity;
    this.#keepalive = parts.keepalive;
    this.#cache = parts.cache;
    initBody(this, parts.body, parts.headers);
  }

  get method(): string {
    return this.#method;
  }

  get url(): string {
    return this.#url;
  }

  get headers(): Headers {
    return this.#headers;
  }

  get redirect(): RequestRedirect {
    return this.#redirect;
  }

  /** workerd: the Fetcher a request came in through; always null here. */
  get fetcher(): null {
    return null;
  }

  /** Never null: a request made without a signal gets one that never aborts. */
  get signal(): AbortSignal {
    return (this.#signal ??= new AbortController().signal);
  }

  get cf(): unknown {
    const cf = this.#cf;
    return cf instanceof LazyCf ? cf.value() : cf;
  }

  get integrity(): string {
    return this.#integrity;
  }

  get keepalive(): boolean {
    return this.#keepalive;
  }

  get cache(): RequestCache {
    return this.#cache;
  }

  clone(): Request {
    if (bodyUnusable(this)) throw new TypeError('Cannot clone a Request whose body has already been used.');
    return fromParts({
      method: this.#method,
      url: this.#url,
      headers: copyHeaders(this.#headers),
      body: cloneBody(this),
      redirect: this.#redirect,
      signal: this.#signal,
      cf: this.#cf,
      integrity: this.#integrity,
      keepalive: this.#keepalive,
      cache: this.#cache,
    });
  }
}

enumerableMembers(Request);
setToStringTag(Request, 'Request');

export type RequestInfo = Request | string | { toString(): string };

// Outside the class body on purpose: esbuild emits a class that names itself inside its own body
// as `var Request = class _Request`, which only its keepNames option turns back into "Request".
function fromParts(parts: RequestParts): Request {
  return new Request(FROM_PARTS as unknown as RequestInfo, parts as unknown as RequestInit);
}

/** The Request constructor's steps (Fetch "new Request(input, init)"), minus what only browsers
 *  have: modes, credentials, referrers, windows and priority. */
function buildParts(input: RequestInfo, rawInit: RequestInit | undefined, argCount: number): RequestParts {
  if (argCount < 1) throw new TypeError("Failed to construct 'Request': 1 argument required, but only 0 present.");
  const init = toDictionary(rawInit, "Failed to construct 'Request'") as RequestInit;
  const source = input instanceof Request ? input : null;

  let url: string;
  if (source) {
    url = source.url;
  } else {
    const text = toUSVString(input);
    const parsed = parseURL(text);
    // Workers have no document, hence no base URL: relative URLs are an error.
    if (parsed === null) throw new TypeError(`Invalid URL: ${text}`);
    if (parsed.username !== '' || parsed.password !== '') {
      throw new TypeError(`Request cannot be constructed from a URL that includes credentials: ${text}`);
    }
    url = serializeURL(parsed);
  }

  // WebIDL reads dictionary members in lexicographic order.
  const initBodyValue = init.body;
  const cache = enumMember(init.cache, CACHE_MODES, 'RequestCache') as RequestCache | undefined;
  const cf = init.cf;
  const headersInit = init.headers;
  const integrity = init.integrity === undefined ? undefined : `${init.integrity}`;
  const keepalive = init.keepalive === undefined ? undefined : Boolean(init.keepalive);
  const method = init.method === undefined ? undefined : normalizeMethod(init.method);
  const redirect = enumMember(init.redirect, REDIRECT_MODES, 'RequestRedirect') as RequestRedirect | undefined;
  const signal = init.signal;
  if (signal !== undefined && signal !== null && !isAbortSignal(signal)) {
    throw new TypeError("Failed to construct 'Request': member signal is not of type AbortSignal.");
  }

  const finalMethod = method ?? source?.method ?? 'GET';
  const headers = headersInit !== undefined ? createHeaders(headersInit) : source ? copyHeaders(source.headers) : new Headers();

  const hasInitBody = initBodyValue !== undefined && initBodyValue !== null;
  if ((hasInitBody || (source !== null && hasBody(source))) && (finalMethod === 'GET' || finalMethod === 'HEAD')) {
    throw new TypeError('Request with a GET or HEAD method cannot have a body.');
  }
  let body: BodySource | null = null;
  if (hasInitBody) {
    const extracted = extractBody(initBodyValue);
    body = extracted.source;
    if (extracted.contentType !== null && !headers.has('content-type')) headers.append('content-type', extracted.contentType);
  } else if (source !== null && hasBody(source)) {
    // The new request takes over the input's body (even with `body: null` in init, as the spec
    // says); the input reads as used from now on.
    if (bodyUnusable(source)) throw new TypeError('Cannot construct a Request with a Request object that has already been used.');
    body = takeBody(source);
  }

  return {
    method: finalMethod,
    url,
    headers,
    body,
    redirect: redirect ?? source?.redirect ?? 'follow',
    signal: signal !== undefined ? signal : source ? source.signal : null,
    cf: cf !== undefined ? cf : source?.cf,
    integrity: integrity ?? source?.integrity ?? '',
    keepalive: keepalive ?? source?.keepalive ?? false,
    cache: cache ?? source?.cache ?? 'default',
  };
}

function normalizeMethod(value: unknown): string {
  const method = toByteString(value, 'Method');
  if (!HTTP_TOKEN.test(method)) throw new TypeError(`Invalid HTTP method string: ${method}`);
  const upper = method.toUpperCase();
  if (FORBIDDEN_METHODS.has(upper)) throw new TypeError(`Invalid HTTP method string: ${method}`);
  return NORMALIZED_METHODS.has(upper) ? upper : method;
}

function enumMember(value: unknown, allowed: readonly string[], type: string): string | undefined {
  if (value === undefined) return undefined;
  const s = `${value as string}`;
  if (!allowed.includes(s)) {
    throw new TypeError(`Failed to construct 'Request': The provided value '${s}' is not a valid enum value of type ${type}.`);
  }
  return s;
}

/**
 * A request as it arrives from the host (for sandbox/wire.ts): URL and method come from a real
 * HTTP request, a byte body was transferred in and is used without a copy (or is a stream the
 * host feeds), and the headers are immutable, as on workerd ("Can't modify immutable headers").
 */
export function createIncomingRequest(wire: {
  method: string;
  url: string;
  headers: Iterable<[string, string]>;
  body: Uint8Array | ReadableStream | null;
  cf?: unknown;
  /** the host already parsed and serialized the URL (WHATWG, Node's own parser) */
  urlSerialized?: boolean;
}): Request {
  let url = wire.url;
  if (!wire.urlSerialized) {
    const parsed = parseURL(url);
    if (parsed === null) throw new TypeError(`Invalid URL: ${wire.url}`);
    url = serializeURL(parsed);
  }
  const headers = createHeaders(wire.headers, 'immutable');
  const hasPayload = wire.body !== null && wire.method !== 'GET' && wire.method !== 'HEAD';
  return fromParts({
    method: wire.method,
    url,
    headers,
    body: !hasPayload ? null : wire.body instanceof ReadableStream ? { kind: 'stream', value: wire.body } : bytesSource(wire.body as Uint8Array),
    // As on Workers: an incoming request forwarded with fetch(request) passes redirects through.
    redirect: 'manual',
    signal: null,
    cf: wire.cf,
    integrity: '',
    keepalive: false,
    cache: 'default',
  });
}
