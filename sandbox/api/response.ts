// Response (Fetch §5.5), shaped like workerd's: it extends Body and exposes status, statusText,
// headers, ok, redirected, url, webSocket, cf and type, plus the static error(), redirect() and
// json().
import { Body, bodyUnusable, bytesSource, cloneBody, extractBody, initBody, type BodyInit, type BodySource } from './body.js';
import { enumerableMembers, toByteString, toUSVString } from './fetch-idl.js';
import { copyHeaders, createHeaders, headersGuard, type Headers, type HeadersInit } from './headers.js';
import { INTERNAL, setToStringTag, toDictionary } from './idl.js';
import { ReadableStream } from './streams.js';
import { parseURL, serializeURL } from './url.js';
import { webSocketHooks } from '../websocket-hooks.js';

export type ResponseType = 'default' | 'error' | 'basic' | 'cors' | 'opaque' | 'opaqueredirect';

export interface ResponseInit {
  cf?: unknown;
  headers?: HeadersInit;
  status?: number;
  statusText?: string;
  webSocket?: unknown;
}

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// RFC 9112 reason-phrase: HTAB, SP, visible ASCII and obs-text.
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;

interface ResponseParts {
  type: ResponseType;
  status: number;
  statusText: string;
  headers: Headers;
  body: BodySource | null;
  url: string;
  redirected: boolean;
  cf: unknown;
  /** a 101 response's WebSocket (the add-on's object), else absent */
  webSocket?: unknown;
}

/** Passed as `body` (with the parts as `init`) to build a Response without re-validating. */
const FROM_PARTS = Symbol('cinder.response-from-parts');

export class Response extends Body {
  #type: ResponseType;
  #status: number;
  #statusText: string;
  #headers: Headers;
  #url: string;
  #redirected: boolean;
  #cf: unknown;
  #webSocket: unknown;

  constructor(body: BodyInit | null = null, init?: ResponseInit) {
    const parts = (body as unknown) === FROM_PARTS ? (init as unknown as ResponseParts) : buildParts(body, init);
    super(INTERNAL);
    this.#type = parts.type;
    this.#status = parts.status;
    this.#statusText = parts.statusText;
    this.#headers = parts.headers;
    this.#url = parts.url;
    this.#redirected = parts.redirected;
    this.#cf = parts.cf;
    this.#webSocket = parts.webSocket ?? null;
    initBody(this, parts.body, parts.headers);
  }

  /** A network error: status 0, type "error", immutable empty headers. */
  static error(): Response {
    return fromParts({ type: 'error', status: 0, statusText: '', headers: createHeaders(undefined, 'immutable'), body: null, url: '', redirected: false, cf: undefined });
  }

  static redirect(url: string, status: number = 302): Response {
    const text = toUSVString(url);
    const parsed = parseURL(text);
    if (parsed === null) throw new TypeError(`Unable to parse URL: ${text}`);
    const code = toUnsignedShort(status);
    if (!REDIRECT_STATUSES.has(code)) {
      throw new RangeError(`${code} is not a redirect status code. It must be one of: 301, 302, 303, 307, or 308.`);
    }
    const headers = createHeaders([['location', serializeURL(parsed)]], 'immutable');
    return fromParts({ type: 'default', status: code, statusText: '', headers, body: null, url: '', redirected: false, cf: undefined });
  }

  static json(data: unknown, init?: ResponseInit): Response {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError('Response.json: the value is not JSON-serializable.');
    const parts = buildParts(null, init);
    parts.body = { kind: 'string', value: text };
    if (NULL_BODY_STATUSES.has(parts.status)) {
      throw new TypeError('Response with null body status (101, 204, 205, or 304) cannot have a body.');
    }
    if (!parts.headers.has('content-type')) parts.headers.append('content-type', 'application/json');
    return fromParts(parts);
  }

  get type(): ResponseType {
    return this.#type;
  }

  get url(): string {
    return this.#url;
  }

  get redirected(): boolean {
    return this.#redirected;
  }

  get status(): number {
    return this.#status;
  }

  get ok(): boolean {
    return this.#status >= 200 && this.#status <= 299;
  }

  get statusText(): string {
    return this.#statusText;
  }

  get headers(): Headers {
    return this.#headers;
  }

  /** workerd: the WebSocket of a 101 response (null otherwise). */
  get webSocket(): unknown {
    return this.#webSocket;
  }

  get cf(): unknown {
    return this.#cf;
  }

  clone(): Response {
    if (bodyUnusable(this)) throw new TypeError('Cannot clone a Response whose body has already been used.');
    // A clone keeps the original's guard: clones of redirects and errors stay immutable.
    const headers = copyHeaders(this.#headers, headersGuard(this.#headers));
    return fromParts({
      type: this.#type,
      status: this.#status,
      statusText: this.#statusText,
      headers,
      body: cloneBody(this),
      url: this.#url,
      redirected: this.#redirected,
      cf: this.#cf,
      webSocket: this.#webSocket,
    });
  }
}

enumerableMembers(Response);
setToStringTag(Response, 'Response');

function fromParts(parts: ResponseParts): Response {
  return new Response(FROM_PARTS as unknown as BodyInit, parts as unknown as ResponseInit);
}

/** Fetch "initialize a response" plus body extraction, for `new Response(body, init)`. */
function buildParts(body: unknown, rawInit: ResponseInit | undefined): ResponseParts {
  const init = toDictionary(rawInit, "Failed to construct 'Response'") as ResponseInit;
  // WebIDL reads dictionary members in lexicographic order.
  const cf = init.cf;
  const headersInit = init.headers;
  const status = init.status === undefined ? 200 : toUnsignedShort(init.status);
  const statusText = init.statusText === undefined ? '' : toByteString(init.statusText, 'statusText');
  const webSocket = init.webSocket ?? null;
  if (webSocket !== null) {
    const hooks = webSocketHooks();
    if (!hooks || !hooks.isWebSocket(webSocket)) throw new TypeError("Failed to construct 'Response': member webSocket is not of type 'WebSocket'.");
    if (status !== 101) throw new RangeError('Responses with a webSocket must have status code 101.');
    if (body !== null && body !== undefined) throw new TypeError('Response with null body status (101, 204, 205, or 304) cannot have a body.');
    return { type: 'default', status, statusText, headers: createHeaders(headersInit), body: null, url: '', redirected: false, cf, webSocket };
  }
  if (status < 200 || status > 599) {
    throw new RangeError('Responses may only be constructed with status codes in the range 200 to 599, inclusive.');
  }
  if (!REASON_PHRASE.test(statusText)) throw new TypeError(`Invalid statusText: ${JSON.stringify(statusText)}`);
  const headers = createHeaders(headersInit);
  let source: BodySource | null = null;
  if (body !== null && body !== undefined) {
    if (NULL_BODY_STATUSES.has(status)) {
      // workerd leniency that Workers code relies on: `new Response('', {status: 204})` is a
      // response without a body (the spec would throw, as for any other body).
      if (body === '') return { type: 'default', status, statusText, headers, body: null, url: '', redirected: false, cf };
      throw new TypeError('Response with null body status (101, 204, 205, or 304) cannot have a body.');
    }
    const extracted = extractBody(body);
    source = extracted.source;
    if (extracted.contentType !== null && !headers.has('content-type')) headers.append('content-type', extracted.contentType);
  }
  return { type: 'default', status, statusText, headers, body: source, url: '', redirected: false, cf };
}

/** WebIDL `unsigned short`: ToNumber, truncate, modulo 2^16 (so 65736 is 200, as in browsers). */
function toUnsignedShort(value: unknown): number {
  const n = Number(value);
  if (!Number.isFinite(n)) return 0;
  const int = Math.trunc(n) % 65536;
  return int < 0 ? int + 65536 : int;
}

/**
 * A response as it arrives from the host (an outbound fetch's result): headers immutable, as in
 * workerd; a byte body was transferred in and is used without a copy; any status allowed. Its
 * type is "default", as workerd reports for fetched responses (no CORS filtering at the edge).
 */
export function createIncomingResponse(wire: {
  status: number;
  statusText: string;
  headers: Iterable<[string, string]>;
  /** a string (a service binding's inline text) is kept as is: no Content-Type is added */
  body: string | Uint8Array | ReadableStream | null;
  url: string;
  redirected: boolean;
  cf?: unknown;
  /** an outbound WebSocket connection's guest end (status 101) */
  webSocket?: unknown;
}): Response {
  return fromParts({
    webSocket: wire.webSocket,
    type: 'default',
    status: wire.status,
    statusText: wire.statusText,
    headers: createHeaders(wire.headers, 'immutable'),
    body: incomingBody(wire.body, wire.status),
    url: wire.url,
    redirected: wire.redirected,
    cf: wire.cf,
  });
}

function incomingBody(body: string | Uint8Array | ReadableStream | null, status: number): BodySource | null {
  if (body === null || NULL_BODY_STATUSES.has(status)) return null;
  if (typeof body === 'string') return { kind: 'string', value: body };
  if (body instanceof ReadableStream) return { kind: 'stream', value: body };
  return bytesSource(body);
}
