// The guest half of an R2 binding: env.NAME as Cloudflare documents R2's Workers API (head, get
// with ranges and conditions, put with metadata, checksums and conditions, delete, list,
// multipart uploads). It holds only the binding's NAME; the host resolves it against the calling
// worker's own bindings. Bodies stream: a put hands the host its stream (or the request body it
// was given, untouched, piped host to host), and a get's body is a host stream read on demand.
import { hostCall } from '../../sandbox/bridge.js';
import { offerStream } from '../../sandbox/wire.js';
import { hostByteStream, untouchedHostStream } from '../../sandbox/host-stream.js';
import { ReadableStream } from '../../sandbox/api/streams.js';
import { utf8Decode, utf8Encode } from '../../sandbox/api/encoding.js';
import { R2_OPS } from '../../protocol/wall.js';
import type { WireChecksums, WireConditional, WireGetAnswer, WireHttpMetadata, WireListResult, WirePutBody, WireR2Object, WireRange } from './protocol.js';

const constructToken = Symbol('R2Bucket');

interface HeadersLike {
  get(name: string): string | null;
  set(name: string, value: string): void;
}

function isHeaders(value: unknown): value is HeadersLike {
  const HeadersClass = (globalThis as { Headers?: new () => unknown }).Headers;
  return !!HeadersClass && value instanceof HeadersClass;
}

function rethrow(error: unknown): never {
  const message = error && typeof (error as Error).message === 'string' ? (error as Error).message : String(error);
  throw (error as Error)?.name === 'TypeError' ? new TypeError(message) : new Error(message);
}

function call<T>(op: string, ...args: unknown[]): Promise<T> {
  return hostCall<T>(op, ...args).catch(rethrow);
}

function keyName(key: unknown): string {
  if (typeof key === 'symbol') throw new TypeError('Cannot convert a Symbol value to a string');
  return String(key);
}

function hex(bytes: ArrayBuffer): string {
  let out = '';
  for (const b of new Uint8Array(bytes)) out += b.toString(16).padStart(2, '0');
  return out;
}

function fromHex(text: string): ArrayBuffer {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out.buffer;
}

/** Etags as conditions take them: quotes and a weak prefix removed; a list from a header. */
function etagList(value: unknown): string[] {
  const items = Array.isArray(value) ? value.map(String) : String(value).split(',');
  return items.map((item) => item.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1')).filter((item) => item !== '');
}

function dateMs(value: unknown, where: string): number {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw new TypeError(`${where} must be a Date`);
  return ms;
}

function conditional(onlyIf: unknown): WireConditional | undefined {
  if (onlyIf === undefined || onlyIf === null) return undefined;
  const out: WireConditional = {};
  if (isHeaders(onlyIf)) {
    const ifMatch = onlyIf.get('if-match');
    const ifNoneMatch = onlyIf.get('if-none-match');
    const ifModifiedSince = onlyIf.get('if-modified-since');
    const ifUnmodifiedSince = onlyIf.get('if-unmodified-since');
    if (ifMatch) out.etagMatches = etagList(ifMatch);
    if (ifNoneMatch) out.etagDoesNotMatch = etagList(ifNoneMatch);
    if (ifModifiedSince) out.uploadedAfter = dateMs(ifModifiedSince, 'If-Modified-Since');
    if (ifUnmodifiedSince) out.uploadedBefore = dateMs(ifUnmodifiedSince, 'If-Unmodified-Since');
    // HTTP dates carry whole seconds
    out.secondsGranularity = true;
    return out;
  }
  if (typeof onlyIf !== 'object') throw new TypeError('onlyIf must be an R2Conditional or Headers');
  const c = onlyIf as Record<string, unknown>;
  if (c.etagMatches !== undefined) out.etagMatches = etagList(c.etagMatches);
  if (c.etagDoesNotMatch !== undefined) out.etagDoesNotMatch = etagList(c.etagDoesNotMatch);
  if (c.uploadedBefore !== undefined) out.uploadedBefore = dateMs(c.uploadedBefore, 'onlyIf.uploadedBefore');
  if (c.uploadedAfter !== undefined) out.uploadedAfter = dateMs(c.uploadedAfter, 'onlyIf.uploadedAfter');
  if (c.secondsGranularity) out.secondsGranularity = true;
  return out;
}

function rangeOf(range: unknown): WireRange | undefined {
  if (range === undefined || range === null) return undefined;
  if (isHeaders(range)) {
    const header = range.get('range');
    if (!header) return undefined;
    const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
    if (!match || (match[1] === '' && match[2] === '')) throw new Error('get: The requested range is not satisfiable. (10039)');
    if (match[1] === '') return { suffix: Number(match[2]) };
    const offset = Number(match[1]);
    return match[2] === '' ? { offset } : { offset, length: Number(match[2]) - offset + 1 };
  }
  if (typeof range !== 'object') throw new TypeError('range must be {offset, length}, {suffix} or Headers');
  const r = range as Record<string, unknown>;
  const out: WireRange = {};
  if (r.offset !== undefined) out.offset = Number(r.offset);
  if (r.length !== undefined) out.length = Number(r.length);
  if (r.suffix !== undefined) out.suffix = Number(r.suffix);
  return out;
}

function httpMetadataOf(value: unknown): WireHttpMetadata | undefined {
  if (value === undefined || value === null) return undefined;
  if (isHeaders(value)) {
    const out: WireHttpMetadata = {};
    const pairs: [keyof WireHttpMetadata, string][] = [['contentType', 'content-type'], ['contentLanguage', 'content-language'], ['contentDisposition', 'content-disposition'], ['contentEncoding', 'content-encoding'], ['cacheControl', 'cache-control']];
    for (const [field, header] of pairs) {
      const v = value.get(header);
      if (v !== null) (out as Record<string, unknown>)[field] = v;
    }
    const expires = value.get('expires');
    if (expires !== null && !Number.isNaN(Date.parse(expires))) out.cacheExpiry = Date.parse(expires);
    return out;
  }
  if (typeof value !== 'object') throw new TypeError('httpMetadata must be an object or Headers');
  const m = value as Record<string, unknown>;
  const out: WireHttpMetadata = {};
  for (const field of ['contentType', 'contentLanguage', 'contentDisposition', 'contentEncoding', 'cacheControl'] as const) if (m[field] !== undefined) out[field] = String(m[field]);
  if (m.cacheExpiry !== undefined) out.cacheExpiry = dateMs(m.cacheExpiry, 'httpMetadata.cacheExpiry');
  return out;
}

function checksumsOf(options: Record<string, unknown>): WireChecksums | undefined {
  const out: WireChecksums = {};
  for (const algorithm of ['md5', 'sha1', 'sha256', 'sha384', 'sha512'] as const) {
    const value = options[algorithm];
    if (value === undefined) continue;
    if (typeof value === 'string') out[algorithm] = value.toLowerCase();
    else if (value instanceof ArrayBuffer) out[algorithm] = hex(value);
    else if (ArrayBuffer.isView(value)) out[algorithm] = hex(new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice().buffer);
    else throw new TypeError(`${algorithm} must be an ArrayBuffer or a hex string`);
  }
  return Object.keys(out).length ? out : undefined;
}

async function bodyOf(value: unknown): Promise<WirePutBody> {
  if (value === null || value === undefined) return { empty: true };
  if (typeof value === 'string') return { bytes: utf8Encode(value).slice().buffer as ArrayBuffer };
  if (value instanceof ArrayBuffer) return { bytes: value.slice(0) };
  if (ArrayBuffer.isView(value)) return { bytes: new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice().buffer };
  if (value instanceof ReadableStream) {
    const host = untouchedHostStream(value as never);
    return host !== undefined ? { hostStream: host } : { stream: offerStream(value as never) };
  }
  const BlobClass = (globalThis as { Blob?: new () => { arrayBuffer(): Promise<ArrayBuffer> } }).Blob;
  if (BlobClass && value instanceof BlobClass) return { bytes: await value.arrayBuffer() };
  throw new TypeError('put: the value must be a ReadableStream, ArrayBuffer, ArrayBufferView, string, Blob or null');
}

class R2Checksums {
  readonly md5?: ArrayBuffer;
  readonly sha1?: ArrayBuffer;
  readonly sha256?: ArrayBuffer;
  readonly sha384?: ArrayBuffer;
  readonly sha512?: ArrayBuffer;
  readonly #hex: WireChecksums;

  constructor(wire: WireChecksums) {
    this.#hex = { ...wire };
    for (const [algorithm, value] of Object.entries(wire)) if (value) Object.defineProperty(this, algorithm, { value: fromHex(value), enumerable: true });
  }

  toJSON(): WireChecksums {
    return { ...this.#hex };
  }
}

export class R2Object {
  readonly key: string;
  readonly version: string;
  readonly size: number;
  readonly etag: string;
  readonly httpEtag: string;
  readonly checksums: R2Checksums;
  readonly uploaded: Date;
  readonly httpMetadata: Record<string, unknown>;
  readonly customMetadata: Record<string, string>;
  readonly range?: { offset: number; length: number };
  readonly storageClass: string;

  constructor(token: unknown, wire: WireR2Object) {
    if (token !== constructToken) throw new TypeError('Illegal constructor');
    this.key = wire.key;
    this.version = wire.version;
    this.size = wire.size;
    this.etag = wire.etag;
    this.httpEtag = `"${wire.etag}"`;
    this.checksums = new R2Checksums(wire.checksums);
    this.uploaded = new Date(wire.uploaded);
    const { cacheExpiry, ...rest } = wire.httpMetadata;
    this.httpMetadata = cacheExpiry === undefined ? { ...rest } : { ...rest, cacheExpiry: new Date(cacheExpiry) };
    this.customMetadata = { ...wire.customMetadata };
    if (wire.range) this.range = { ...wire.range };
    this.storageClass = wire.storageClass;
  }

  /** Set the stored HTTP metadata as response headers. */
  writeHttpMetadata(headers: unknown): void {
    if (!isHeaders(headers)) throw new TypeError("Failed to execute 'writeHttpMetadata' on 'R2Object': parameter 1 is not of type 'Headers'.");
    const m = this.httpMetadata;
    const pairs: [string, string][] = [['contentType', 'content-type'], ['contentLanguage', 'content-language'], ['contentDisposition', 'content-disposition'], ['contentEncoding', 'content-encoding'], ['cacheControl', 'cache-control']];
    for (const [field, header] of pairs) if (typeof m[field] === 'string') headers.set(header, m[field] as string);
    if (m.cacheExpiry instanceof Date) headers.set('expires', m.cacheExpiry.toUTCString());
  }

  get [Symbol.toStringTag](): string {
    return 'R2Object';
  }
}

export class R2ObjectBody extends R2Object {
  readonly #body: ReadableStream<Uint8Array>;

  constructor(token: unknown, wire: WireR2Object, body: ReadableStream<Uint8Array>) {
    super(token, wire);
    this.#body = body;
  }

  get body(): ReadableStream<Uint8Array> {
    return this.#body;
  }

  get bodyUsed(): boolean {
    return (this.#body as unknown as { locked: boolean }).locked;
  }

  async bytes(): Promise<Uint8Array> {
    const reader = (this.#body as unknown as { getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }> } }).getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value!);
      total += value!.byteLength;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      out.set(chunk, at);
      at += chunk.byteLength;
    }
    return out;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.bytes()).buffer as ArrayBuffer;
  }

  async text(): Promise<string> {
    return utf8Decode(await this.bytes());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async blob(): Promise<unknown> {
    const BlobClass = (globalThis as { Blob?: new (parts: unknown[], options?: object) => unknown }).Blob!;
    return new BlobClass([await this.bytes()], { type: typeof this.httpMetadata.contentType === 'string' ? this.httpMetadata.contentType : '' });
  }

  get [Symbol.toStringTag](): string {
    return 'R2ObjectBody';
  }
}

export class R2MultipartUpload {
  readonly key: string;
  readonly uploadId: string;
  readonly #binding: string;

  constructor(token: unknown, binding: string, key: string, uploadId: string) {
    if (token !== constructToken) throw new TypeError('Illegal constructor');
    this.#binding = binding;
    this.key = key;
    this.uploadId = uploadId;
  }

  async uploadPart(partNumber: unknown, value: unknown): Promise<{ partNumber: number; etag: string }> {
    const part = await call<{ partNumber: number; etag: string }>(R2_OPS.uploadPart, this.#binding, this.key, this.uploadId, Number(partNumber), await bodyOf(value));
    return { partNumber: part.partNumber, etag: part.etag };
  }

  async abort(): Promise<void> {
    await call<void>(R2_OPS.abortMultipartUpload, this.#binding, this.key, this.uploadId);
  }

  async complete(uploadedParts: unknown): Promise<R2Object> {
    if (!Array.isArray(uploadedParts)) throw new TypeError('complete() takes an array of uploaded parts');
    const parts = uploadedParts.map((p) => ({ partNumber: Number((p as { partNumber?: unknown })?.partNumber), etag: String((p as { etag?: unknown })?.etag) }));
    return new R2Object(constructToken, await call<WireR2Object>(R2_OPS.completeMultipartUpload, this.#binding, this.key, this.uploadId, parts));
  }

  get [Symbol.toStringTag](): string {
    return 'R2MultipartUpload';
  }
}

export class R2Bucket {
  readonly #binding: string;

  constructor(token: unknown, binding: string) {
    if (token !== constructToken) throw new TypeError('Illegal constructor');
    this.#binding = binding;
  }

  async head(key: unknown): Promise<R2Object | null> {
    const wire = await call<WireR2Object | null>(R2_OPS.head, this.#binding, keyName(key));
    return wire ? new R2Object(constructToken, wire) : null;
  }

  async get(key: unknown, options?: unknown): Promise<R2Object | R2ObjectBody | null> {
    const o = (options && typeof options === 'object' ? options : {}) as Record<string, unknown>;
    const wireOptions: { onlyIf?: WireConditional; range?: WireRange } = {};
    const onlyIf = conditional(o.onlyIf);
    if (onlyIf) wireOptions.onlyIf = onlyIf;
    const range = rangeOf(o.range);
    if (range) wireOptions.range = range;
    const answer = await call<WireGetAnswer | null>(R2_OPS.get, this.#binding, keyName(key), wireOptions);
    if (!answer) return null;
    if (answer.body === undefined) return new R2Object(constructToken, answer.object);
    return new R2ObjectBody(constructToken, answer.object, hostByteStream(answer.body) as never);
  }

  async put(key: unknown, value: unknown, options?: unknown): Promise<R2Object | null> {
    const name = keyName(key);
    const o = (options && typeof options === 'object' ? options : {}) as Record<string, unknown>;
    const wireOptions: Record<string, unknown> = {};
    const httpMetadata = httpMetadataOf(o.httpMetadata);
    if (httpMetadata) wireOptions.httpMetadata = httpMetadata;
    if (o.customMetadata !== undefined && o.customMetadata !== null) {
      if (typeof o.customMetadata !== 'object') throw new TypeError('customMetadata must be an object of strings');
      const custom: Record<string, string> = {};
      for (const [k, v] of Object.entries(o.customMetadata as object)) Object.defineProperty(custom, k, { value: String(v), enumerable: true, writable: true, configurable: true });
      wireOptions.customMetadata = custom;
    }
    const onlyIf = conditional(o.onlyIf);
    if (onlyIf) wireOptions.onlyIf = onlyIf;
    const checksums = checksumsOf(o);
    if (checksums) wireOptions.checksums = checksums;
    if (o.storageClass !== undefined) wireOptions.storageClass = String(o.storageClass);
    const body = await bodyOf(value);
    const wire = await call<WireR2Object | null>(R2_OPS.put, this.#binding, name, body, wireOptions);
    return wire ? new R2Object(constructToken, wire) : null;
  }

  async delete(keys: unknown): Promise<void> {
    const list = Array.isArray(keys) ? keys.map(keyName) : [keyName(keys)];
    await call<void>(R2_OPS.delete, this.#binding, list);
  }

  async list(options?: unknown): Promise<{ objects: R2Object[]; truncated: boolean; cursor?: string; delimitedPrefixes: string[] }> {
    const o = (options && typeof options === 'object' ? options : {}) as Record<string, unknown>;
    const wire: Record<string, unknown> = {};
    if (o.limit !== undefined) wire.limit = Number(o.limit);
    for (const field of ['prefix', 'cursor', 'delimiter', 'startAfter'] as const) if (o[field] !== undefined && o[field] !== null) wire[field] = String(o[field]);
    if (o.include !== undefined) wire.include = Array.isArray(o.include) ? o.include.map(String) : o.include;
    const result = await call<WireListResult>(R2_OPS.list, this.#binding, wire);
    const objects = result.objects.map((object) => new R2Object(constructToken, object));
    return result.truncated
      ? { objects, truncated: true, cursor: result.cursor, delimitedPrefixes: result.delimitedPrefixes }
      : { objects, truncated: false, delimitedPrefixes: result.delimitedPrefixes };
  }

  async createMultipartUpload(key: unknown, options?: unknown): Promise<R2MultipartUpload> {
    const name = keyName(key);
    const o = (options && typeof options === 'object' ? options : {}) as Record<string, unknown>;
    const wireOptions: Record<string, unknown> = {};
    const httpMetadata = httpMetadataOf(o.httpMetadata);
    if (httpMetadata) wireOptions.httpMetadata = httpMetadata;
    if (o.customMetadata !== undefined) wireOptions.customMetadata = o.customMetadata;
    if (o.storageClass !== undefined) wireOptions.storageClass = String(o.storageClass);
    const uploadId = await call<string>(R2_OPS.createMultipartUpload, this.#binding, name, wireOptions);
    return new R2MultipartUpload(constructToken, this.#binding, name, uploadId);
  }

  resumeMultipartUpload(key: unknown, uploadId: unknown): R2MultipartUpload {
    return new R2MultipartUpload(constructToken, this.#binding, keyName(key), String(uploadId));
  }

  get [Symbol.toStringTag](): string {
    return 'R2Bucket';
  }
}

/** env.NAME for an `r2_bucket` binding. */
export function makeR2Binding(name: string): R2Bucket {
  return new R2Bucket(constructToken, name);
}
