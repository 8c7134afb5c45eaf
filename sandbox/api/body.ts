// The Body mixin of Request and Response (Fetch §5.2). As in workerd, it is a real base class,
// `Body`, that both extend (not a global). A body keeps what it was made from — a string, bytes,
// a Blob, a FormData snapshot or a stream — and turns it into a ReadableStream only when someone
// asks for `.body`. text()/arrayBuffer() on a string or bytes body never touch a stream: that is
// the hot path of nearly every worker.
import urlencoded from 'whatwg-url/lib/urlencoded.js';
import { Blob, blobBytes, createBlob } from './blob.js';
import { utf8Decode, utf8DecodeWithoutBOM, utf8Encode } from './encoding.js';
import { enumerableMembers, toUSVString } from './fetch-idl.js';
import { FormData, formDataEntries, formDataFromEntries, type FormDataEntry } from './form-data.js';
import type { Headers } from './headers.js';
import { checkInternal } from './idl.js';
import { essence, extractMimeType, serializeMimeType } from './mime.js';
import { decodeMultipart, encodeMultipart, makeBoundary } from './multipart.js';
import { consumedStream, isDisturbed, readAllBytes, ReadableStream, streamFromBytes } from './streams.js';
import { URLSearchParams } from './url.js';

export type BodyInit = string | ArrayBuffer | ArrayBufferView | Blob | FormData | URLSearchParams | ReadableStream;

/** What a body was made from, kept until it is read. */
export type BodySource =
  | { kind: 'string'; value: string }
  | { kind: 'bytes'; value: Uint8Array }
  | { kind: 'blob'; value: Blob }
  | { kind: 'form-data'; entries: FormDataEntry[]; boundary: string }
  | { kind: 'stream'; value: ReadableStream };

interface BodyState {
  /** null: no body, or a non-stream body already consumed (then `used` is true) */
  source: BodySource | null;
  /** consumed (by us, through any path) */
  used: boolean;
  /** bytes source also held by a clone: copy before handing the buffer out */
  shared: boolean;
  /** the request's/response's headers, for blob() and formData() */
  headers: Headers | null;
  /** what `.body` returns after a non-stream body was consumed */
  consumed: ReadableStream | null;
}

const USED_MESSAGE = 'Body has already been used. It can only be used once. Use tee() first if you need to read it twice.';

/** Fetch "extract a body": the source and the Content-Type it implies (null for none). */
export function extractBody(init: unknown): { source: BodySource; contentType: string | null } {
  if (typeof init === 'string') {
    return { source: { kind: 'string', value: toUSVString(init) }, contentType: 'text/plain;charset=UTF-8' };
  }
  if (init instanceof ReadableStream) {
    if (init.locked) throw new TypeError('This ReadableStream is locked to a reader, and cannot be used as a body.');
    if (isDisturbed(init)) throw new TypeError('This ReadableStream has already been read from, and cannot be used as a body.');
    return { source: { kind: 'stream', value: init }, contentType: null };
  }
  if (init instanceof Blob) return { source: { kind: 'blob', value: init }, contentType: init.type || null };
  if (init instanceof FormData) {
    const boundary = makeBoundary();
    return {
      source: { kind: 'form-data', entries: formDataEntries(init), boundary },
      contentType: `multipart/form-data; boundary=${boundary}`,
    };
  }
  if (init instanceof URLSearchParams) {
    return { source: { kind: 'string', value: init.toString() }, contentType: 'application/x-www-form-urlencoded;charset=UTF-8' };
  }
  // BufferSource: a copy, so later writes by the caller do not change the body.
  if (ArrayBuffer.isView(init)) {
    return { source: { kind: 'bytes', value: new Uint8Array(init.buffer, init.byteOffset, init.byteLength).slice() }, contentType: null };
  }
  if (init instanceof ArrayBuffer) return { source: { kind: 'bytes', value: new Uint8Array(init.slice(0)) }, contentType: null };
  // Anything else converts to a string (WebIDL USVString), as in browsers and workerd.
  return { source: { kind: 'string', value: toUSVString(init) }, contentType: 'text/plain;charset=UTF-8' };
}

/** Streams made by `.body` from content held in full, and that content (see takeStreamForWire). */
const contentBehind = new WeakMap<ReadableStream, Exclude<BodySource, { kind: 'stream' }>>();

// Module-private access to a Body's state (set in the static block).
let stateOf: (body: Body) => BodyState;

export class Body {
  #state: BodyState = { source: null, used: false, shared: false, headers: null, consumed: null };

  /** Not constructible from outside: Request and Response pass the internal token. */
  constructor(token: unknown) {
    checkInternal(token);
  }

  get body(): ReadableStream<Uint8Array> | null {
    const state = this.#state;
    const source = state.source;
    if (source === null) return state.used ? (state.consumed ??= consumedStream()) : null;
    if (source.kind === 'stream') return source.value as ReadableStream<Uint8Array>;
    // From here on the body *is* this stream; consuming it goes through the stream.
    const stream = streamFromBytes(sourceBytes(source));
    state.source = { kind: 'stream', value: stream };
    contentBehind.set(stream, source);
    return stream;
  }

  get bodyUsed(): boolean {
    const state = this.#state;
    return state.used || (state.source?.kind === 'stream' && isDisturbed(state.source.value));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const { bytes, owned } = await consumeBytes(this.#state);
    return toArrayBuffer(bytes, owned);
  }

  async bytes(): Promise<Uint8Array> {
    const { bytes, owned } = await consumeBytes(this.#state);
    return owned ? bytes : bytes.slice();
  }

  async text(): Promise<string> {
    const source = beginConsume(this.#state);
    if (source === null) return '';
    if (source.kind === 'string') return source.value;
    return utf8Decode(await readSource(source));
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async blob(): Promise<Blob> {
    const mime = extractMimeType(this.#state.headers?.get('content-type') ?? null);
    const { bytes, owned } = await consumeBytes(this.#state);
    return createBlob(owned ? bytes : bytes.slice(), mime ? serializeMimeType(mime) : '');
  }

  async formData(): Promise<FormData> {
    const mime = extractMimeType(this.#state.headers?.get('content-type') ?? null);
    const { bytes } = await consumeBytes(this.#state);
    const kind = mime ? essence(mime) : null;
    if (kind === 'multipart/form-data') {
      const boundary = mime?.parameters.get('boundary');
      if (!boundary) throw new TypeError('Failed to parse body as FormData: the multipart/form-data Content-Type has no boundary.');
      return formDataFromEntries(decodeMultipart(bytes, boundary));
    }
    if (kind === 'application/x-www-form-urlencoded') {
      return formDataFromEntries(urlencoded.parseUrlencodedString(utf8DecodeWithoutBOM(bytes)));
    }
    throw new TypeError(
      'Unrecognized Content-Type header value. FormData can only parse the following MIME types: multipart/form-data, application/x-www-form-urlencoded',
    );
  }

  static {
    stateOf = (body) => body.#state;
  }
}

enumerableMembers(Body);

// --- used by Request/Response ------------------------------------------------------------------

/** Give a freshly constructed Request/Response its body (or none) and its headers. */
export function initBody(target: Body, source: BodySource | null, headers: Headers): void {
  const state = stateOf(target);
  state.source = source;
  state.headers = headers;
}

/** Fetch "unusable": read from, being read, or locked. */
export function bodyUnusable(target: Body): boolean {
  const state = stateOf(target);
  const source = state.source;
  return state.used || (source?.kind === 'stream' && (isDisturbed(source.value) || source.value.locked));
}

export function hasBody(target: Body): boolean {
  const state = stateOf(target);
  return state.source !== null || state.used;
}

/** Move a body from one Request to a new one (`new Request(request)`): the old one reads as used. */
export function takeBody(from: Body): BodySource | null {
  const state = stateOf(from);
  if (state.source === null && !state.used) return null;
  if (bodyUnusable(from)) throw new TypeError(USED_MESSAGE);
  const source = state.source;
  state.source = null;
  state.used = true;
  return source;
}

/** The body for a clone: a stream is teed (the original keeps one branch), anything else is
 *  immutable and shared. */
export function cloneBody(from: Body): BodySource | null {
  if (bodyUnusable(from)) throw new TypeError(USED_MESSAGE);
  const state = stateOf(from);
  const source = state.source;
  if (source === null) return null;
  if (source.kind === 'stream') {
    const [mine, theirs] = source.value.tee();
    state.source = { kind: 'stream', value: mine };
    return { kind: 'stream', value: theirs };
  }
  if (source.kind === 'bytes') state.shared = true;
  return source;
}

/** Wrap bytes we already own (a transferred wire buffer) as a body source, without a copy. */
export function bytesSource(bytes: Uint8Array): BodySource {
  return { kind: 'bytes', value: bytes };
}

/**
 * The body as the dispatcher sends it to the host: a string stays a string (the host encodes it
 * natively), anything else becomes an ArrayBuffer of exactly the body's length; streams are read
 * to the end. Marks the body used; TypeError if it already was.
 */
export async function bodyForWire(target: Body): Promise<string | ArrayBuffer | null> {
  const state = stateOf(target);
  const source = beginConsume(state);
  if (source === null) return null;
  if (source.kind === 'string') return source.value;
  return toArrayBuffer(await readSource(source), ownsBytes(source, state));
}

// --- internals ---------------------------------------------------------------------------------

/** Start consuming: TypeError if unusable; returns the source (null for no body). */
function beginConsume(state: BodyState): BodySource | null {
  const source = state.source;
  if (state.used || (source?.kind === 'stream' && (isDisturbed(source.value) || source.value.locked))) {
    throw new TypeError(USED_MESSAGE);
  }
  if (source === null) return null;
  state.used = true;
  // A stream stays: `.body` must keep returning that same (now disturbed) stream.
  if (source.kind !== 'stream') state.source = null;
  return source;
}

async function consumeBytes(state: BodyState): Promise<{ bytes: Uint8Array; owned: boolean }> {
  const source = beginConsume(state);
  if (source === null) return { bytes: new Uint8Array(0), owned: true };
  return { bytes: await readSource(source), owned: ownsBytes(source, state) };
}

/** The bytes of a non-stream source, synchronously. */
function sourceBytes(source: Exclude<BodySource, { kind: 'stream' }>): Uint8Array {
  switch (source.kind) {
    case 'string':
      return utf8Encode(source.value);
    case 'bytes':
      return source.value;
    case 'blob':
      return blobBytes(source.value);
    case 'form-data':
      return encodeMultipart(source.entries, source.boundary);
  }
}

function readSource(source: BodySource): Promise<Uint8Array> | Uint8Array {
  return source.kind === 'stream' ? readAllBytes(source.value) : sourceBytes(source);
}

/** Whether the bytes read from `source` are ours alone to hand out without a copy. */
function ownsBytes(source: BodySource, state: BodyState): boolean {
  if (source.kind === 'bytes') return !state.shared;
  return source.kind !== 'blob'; // a Blob's bytes stay the Blob's
}

function toArrayBuffer(bytes: Uint8Array, owned: boolean): ArrayBuffer {
  if (owned && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes.buffer as ArrayBuffer;
  return bytes.slice().buffer;
}

/**
 * For the dispatcher: the body's ReadableStream when it was made from one (so the host can pull
 * it chunk by chunk), else null — in which case bodyForWire() sends it whole. Marks it used.
 */
export function takeStreamForWire(target: Body): ReadableStream<Uint8Array> | null {
  const state = stateOf(target);
  const source = state.source;
  if (source?.kind !== 'stream') return null;
  // `new Response(other.body, other)` (Hono, itty's corsify...) re-wraps a body we hold in full:
  // while nobody has read from that stream, send the content whole, with its length, as workerd
  // does, instead of streaming it chunked.
  const behind = contentBehind.get(source.value);
  if (behind && !source.value.locked && !isDisturbed(source.value)) {
    state.source = behind;
    return null;
  }
  beginConsume(state);
  return source.value as ReadableStream<Uint8Array>;
}
