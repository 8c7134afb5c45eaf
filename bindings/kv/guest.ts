// The guest half of a KV binding: env.NAME as Workers KV documents it (get in four types and in
// bulk, getWithMetadata, put, delete, list). It holds only the binding's NAME; every call goes
// to the host by that name and the host resolves it against the calling worker's own bindings,
// so nothing here can widen what a worker reaches. Argument shaping and the TypeErrors workerd
// raises itself happen here, with the caller's stack; limits that the KV service enforces
// (sizes, TTLs, list limits) are checked on the host, which must not trust the guest anyway.
import { hostCall } from '../../sandbox/bridge.js';
import { registerBinding } from '../../sandbox/env.js';
import { readAllBytes } from '../../sandbox/api/streams.js';
import { KV_OPS } from '../../protocol/wall.js';
import { KV_LIMITS, type GetType, type WireListResult, type WirePutOptions, type WireValue } from './protocol.js';

// Structural views of the stream classes; the real ones are globals that the Web API layer
// defines, looked up when used (this module is evaluated before they are installed).
interface ByteReader {
  read(): Promise<{ done: boolean; value?: unknown }>;
  cancel(reason?: unknown): Promise<void>;
  releaseLock(): void;
}
interface StreamLike {
  getReader(): ByteReader;
}
type StreamClass = new (source: object) => StreamLike;

const GET_TYPES: readonly string[] = ['text', 'json', 'arrayBuffer', 'stream'];
const UNKNOWN_TYPE = 'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".';
const PUT_TYPES = 'KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.';

// Only this module can construct a namespace: `new env.KV.constructor("OTHER")` is refused here,
// and would be refused by the host anyway.
const constructToken = Symbol('KVNamespace');

function streamClass(): StreamClass | undefined {
  const candidate = (globalThis as { ReadableStream?: unknown }).ReadableStream;
  return typeof candidate === 'function' ? (candidate as StreamClass) : undefined;
}

function keyName(key: unknown): string {
  // workerd converts the key with ToString; a Symbol cannot be converted.
  if (typeof key === 'symbol') throw new TypeError('Cannot convert a Symbol value to a string');
  const name = String(key);
  if (name === '') throw new TypeError('Key name cannot be empty.');
  if (name === '.') throw new TypeError('"." is not allowed as a key name.');
  if (name === '..') throw new TypeError('".." is not allowed as a key name.');
  return name;
}

function getOptions(options: unknown): { type: string; cacheTtl: number | undefined } {
  if (options === undefined || options === null) return { type: 'text', cacheTtl: undefined };
  if (typeof options === 'object') {
    const { type, cacheTtl } = options as { type?: unknown; cacheTtl?: unknown };
    return { type: type === undefined ? 'text' : String(type), cacheTtl: cacheTtl === undefined ? undefined : Number(cacheTtl) };
  }
  return { type: String(options), cacheTtl: undefined };
}

/** Errors made on the host arrive as copies; rebuild them in this realm so `instanceof Error`
 *  holds and nothing of the host's stack leaks into the worker. */
function rethrow(error: unknown): never {
  const message = error && typeof (error as Error).message === 'string' ? (error as Error).message : String(error);
  throw (error as Error)?.name === 'TypeError' ? new TypeError(message) : new Error(message);
}

function call<T>(op: string, ...args: unknown[]): Promise<T> {
  return hostCall<T>(op, ...args).catch(rethrow);
}

function parseMetadata(json: string | null | undefined): unknown {
  return json == null ? null : JSON.parse(json);
}

function decodeValue(wire: WireValue, type: GetType): unknown {
  switch (type) {
    case 'json':
      return JSON.parse(wire.value as string);
    case 'stream':
      return bytesStream(wire.value as ArrayBuffer);
    default:
      return wire.value;
  }
}

function bytesStream(bytes: ArrayBuffer): StreamLike {
  const ReadableStream = streamClass();
  if (!ReadableStream) throw new TypeError('KV get(): "stream" needs ReadableStream, which this isolate does not define');
  return new ReadableStream({
    type: 'bytes',
    start(controller: { enqueue(chunk: Uint8Array): void; close(): void }) {
      if (bytes.byteLength > 0) controller.enqueue(new Uint8Array(bytes));
      controller.close();
    },
  });
}

/** A put value as bytes or text for the wire. Streams are drained here, in the guest, so the
 *  host receives one value it can size-check; reading stops as soon as the limit is passed. */
async function putValue(value: unknown): Promise<string | ArrayBuffer> {
  if (typeof value === 'string') return value;
  // workerd takes the value as "string or object": other primitives are converted to text.
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof ArrayBuffer) return value;
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice().buffer;
  }
  const ReadableStream = streamClass();
  if (ReadableStream && value instanceof ReadableStream) return drain(value);
  throw new TypeError(PUT_TYPES);
}

function drain(stream: StreamLike): Promise<ArrayBuffer> {
  const tooLarge = (total: number) => new Error(`KV PUT failed: 413 Value length of ${total} exceeds limit of ${KV_LIMITS.maxValueBytes}.`);
  return readAllBytes(stream as never, { bytes: KV_LIMITS.maxValueBytes, error: tooLarge }).then((bytes) => bytes.buffer as ArrayBuffer);
}

function putOptions(options: unknown): WirePutOptions {
  const wire: WirePutOptions = {};
  if (options === undefined || options === null) return wire;
  if (typeof options !== 'object') throw new TypeError('KV put() options must be an object.');
  const { expiration, expirationTtl, metadata } = options as Record<string, unknown>;
  if (expiration !== undefined) wire.expiration = Number(expiration);
  if (expirationTtl !== undefined) wire.expirationTtl = Number(expirationTtl);
  // workerd serialises metadata with JSON.stringify; null means "no metadata".
  if (metadata !== undefined && metadata !== null) {
    const json = JSON.stringify(metadata);
    if (json !== undefined) wire.metadata = json;
  }
  return wire;
}

export class KVNamespace {
  readonly #binding: string;

  constructor(token: unknown, binding: string) {
    if (token !== constructToken) throw new TypeError('Illegal constructor');
    this.#binding = binding;
  }

  /** get(key, type | {type, cacheTtl}) or get([keys], ...) -> Map of key -> value | null. */
  async get(key: unknown, options?: unknown): Promise<unknown> {
    if (Array.isArray(key)) return this.#bulk(key, options, false);
    const result = await this.#getOne(key, options);
    return result.value;
  }

  /** As get, with the metadata stored beside the value: {value, metadata, cacheStatus}. */
  async getWithMetadata(key: unknown, options?: unknown): Promise<unknown> {
    if (Array.isArray(key)) return this.#bulk(key, options, true);
    return this.#getOne(key, options);
  }

  async #getOne(key: unknown, options: unknown): Promise<{ value: unknown; metadata: unknown; cacheStatus: string | null }> {
    const name = keyName(key);
    const { type, cacheTtl } = getOptions(options);
    if (!GET_TYPES.includes(type)) throw new TypeError(UNKNOWN_TYPE);
    const wire = await call<WireValue | null>(KV_OPS.get, this.#binding, name, type, cacheTtl);
    if (wire === null) return { value: null, metadata: null, cacheStatus: null };
    return { value: decodeValue(wire, type as GetType), metadata: parseMetadata(wire.metadata), cacheStatus: wire.cacheStatus };
  }

  async #bulk(keys: unknown[], options: unknown, withMetadata: boolean): Promise<Map<string, unknown>> {
    // Bulk keys are converted like single ones; their names are validated by the KV service.
    const names = keys.map((key) => {
      if (typeof key === 'symbol') throw new TypeError('Cannot convert a Symbol value to a string');
      return String(key);
    });
    const { type, cacheTtl } = getOptions(options);
    const entries = await call<[string, WireValue | null][]>(KV_OPS.getBulk, this.#binding, names, type, cacheTtl);
    const map = new Map<string, unknown>();
    for (const [name, wire] of entries) {
      if (wire === null) {
        map.set(name, null);
        continue;
      }
      let value: unknown;
      try {
        value = type === 'json' ? JSON.parse(wire.value as string) : wire.value;
      } catch {
        throw new Error(`KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value`);
      }
      map.set(name, withMetadata ? { value, metadata: parseMetadata(wire.metadata) } : value);
    }
    return map;
  }

  async put(key: unknown, value: unknown, options?: unknown): Promise<void> {
    const name = keyName(key);
    const wireOptions = putOptions(options);
    const wireValue = await putValue(value);
    await call<void>(KV_OPS.put, this.#binding, name, wireValue, wireOptions);
  }

  async delete(key: unknown): Promise<void> {
    await call<void>(KV_OPS.delete, this.#binding, keyName(key));
  }

  /** list({prefix, limit, cursor}) -> {keys: [{name, expiration?, metadata?}], list_complete, cursor?} */
  async list(options?: unknown): Promise<unknown> {
    const wire: { prefix?: string; limit?: number; cursor?: string } = {};
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') throw new TypeError('KV list() options must be an object.');
      const { prefix, limit, cursor } = options as Record<string, unknown>;
      if (prefix !== undefined && prefix !== null) wire.prefix = String(prefix);
      if (limit !== undefined && limit !== null) wire.limit = Number(limit);
      if (cursor !== undefined && cursor !== null) wire.cursor = String(cursor);
    }
    const result = await call<WireListResult>(KV_OPS.list, this.#binding, wire);
    const keys = result.keys.map((entry) => {
      const key: { name: string; expiration?: number; metadata?: unknown } = { name: entry.name };
      if (entry.expiration !== undefined) key.expiration = entry.expiration;
      if (entry.metadata !== undefined) key.metadata = JSON.parse(entry.metadata);
      return key;
    });
    return result.list_complete
      ? { keys, list_complete: true, cacheStatus: null }
      : { keys, list_complete: false, cursor: result.cursor, cacheStatus: null };
  }

  get [Symbol.toStringTag](): string {
    return 'KvNamespace';
  }
}

registerBinding('kv_namespace', (name) => new KVNamespace(constructToken, name));
