// Web Crypto's SubtleCrypto and CryptoKey (W3C Web Cryptography API §14, §13), delegated to the
// host: every operation runs in Node's WebCrypto (bindings/crypto/host.ts) through the async
// `crypto` op. A CryptoKey here is a record of the key's public facts (type, extractable,
// algorithm, usages) plus a private handle; the key material never enters the isolate unless the
// worker exports it. When a CryptoKey is garbage collected its handle is handed back with the next
// call, so the host can drop the real key.
//
// This side does the WebIDL conversions that must happen in the caller's realm (reading the
// algorithm dictionary, copying BufferSources at call time, recognising CryptoKeys); the host does
// the rest (algorithm normalization, usages, key checks) and its errors come back by name.
// Also here: workerd's non-standard `crypto.subtle.timingSafeEqual` and `crypto.DigestStream`.
import { hostCall } from '../bridge.js';
import { intrinsics, passes } from './brand.js';
import { DOMException } from './dom-exception.js';
import { utf8Encode } from './encoding.js';
import { INTERNAL, checkInternal, requireArgs, setToStringTag, toDOMString } from './idl.js';
import { WritableStream } from './streams.js';

type Reply = { value: unknown; error?: undefined } | { error: [name: string, message: string] };
type Plain = Record<string, unknown>;

interface KeyDescriptor {
  handle: number;
  type: string;
  extractable: boolean;
  algorithm: Plain;
  usages: string[];
}

// Captured when the bundle is evaluated, before any worker code can replace the globals.
const Registry = FinalizationRegistry;
let registry: FinalizationRegistry<number> | null = null;
/** Handles of collected keys and streams, sent with the next call. */
let released: number[] = [];

function track(owner: object, handle: number): void {
  registry ??= new Registry((h: number) => {
    released.push(h);
  });
  registry.register(owner, handle);
}

async function call<T>(method: string, args: unknown[]): Promise<T> {
  const gone = released;
  released = [];
  const reply = await hostCall<Reply>('crypto', method, args, gone);
  if (reply.error) {
    const [name, message] = reply.error;
    if (name === 'TypeError') throw new TypeError(message);
    if (name === 'RangeError') throw new RangeError(message);
    throw new DOMException(message, name);
  }
  return reply.value as T;
}

// --- WebIDL conversions --------------------------------------------------------------------------

function failed(method: string, detail: string): TypeError {
  return new TypeError(`Failed to execute '${method}' on 'SubtleCrypto': ${detail}`);
}

function isObject(value: unknown): value is Plain {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

/** A BufferSource's bytes, copied now (later changes by the caller must not matter). */
function copyBytes(value: unknown): Uint8Array | null {
  if (ArrayBuffer.isView(value)) {
    const buffer = value.buffer;
    return new Uint8Array(buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  }
  if (isObject(value) && passes(intrinsics.bufferByteLength, value)) return new Uint8Array((value as unknown as ArrayBuffer).slice(0));
  return null;
}

function bufferSource(value: unknown, method: string, position: number): Uint8Array {
  const bytes = copyBytes(value);
  if (!bytes) throw failed(method, `parameter ${position} is not of type 'BufferSource'.`);
  return bytes;
}

const STRING_MEMBERS = ['name', 'namedCurve'];
const NUMBER_MEMBERS = ['length', 'modulusLength', 'saltLength', 'tagLength', 'iterations'];
const BYTES_MEMBERS = ['iv', 'additionalData', 'label', 'salt', 'info', 'counter', 'publicExponent', 'context'];

/** An AlgorithmIdentifier as plain data: a string, or the members any Web Crypto algorithm
 *  dictionary defines (others are ignored, as WebIDL dictionary conversion ignores them). */
function algorithm(value: unknown, method: string): string | Plain {
  if (!isObject(value)) return toDOMString(value);
  const out: Plain = {};
  for (const m of STRING_MEMBERS) {
    const v = value[m];
    if (v !== undefined) out[m] = toDOMString(v);
  }
  for (const m of NUMBER_MEMBERS) {
    const v = value[m];
    if (v !== undefined) out[m] = typeof v === 'number' ? v : +(v as number);
  }
  const hash = value.hash;
  if (hash !== undefined) out.hash = algorithm(hash, method);
  for (const m of BYTES_MEMBERS) {
    const v = value[m];
    if (v === undefined) continue;
    const bytes = copyBytes(v);
    if (!bytes) throw failed(method, `'${m}' of the algorithm is not of type 'BufferSource'.`);
    out[m] = bytes;
  }
  const pub = value.public;
  if (pub !== undefined) {
    const handle = keyHandle(pub);
    if (handle === undefined) throw failed(method, `'public' of the algorithm is not of type 'CryptoKey'.`);
    out.public = handle;
  }
  return out;
}

function usages(value: unknown, method: string, position: number): string[] {
  if (!isObject(value) || typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') {
    throw failed(method, `parameter ${position} is not iterable.`);
  }
  const out: string[] = [];
  for (const usage of value as unknown as Iterable<unknown>) out.push(toDOMString(usage));
  return out;
}

const JWK_STRINGS = ['kty', 'use', 'alg', 'crv', 'x', 'y', 'd', 'n', 'e', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

/** A JsonWebKey dictionary as plain data. */
function jsonWebKey(value: unknown, method: string): Plain {
  if (value !== undefined && value !== null && !isObject(value)) throw failed(method, `parameter 2 is not of type 'JsonWebKey'.`);
  const jwk = (value ?? {}) as Plain;
  const out: Plain = {};
  for (const m of JWK_STRINGS) {
    const v = jwk[m];
    if (v !== undefined) out[m] = toDOMString(v);
  }
  if (jwk.key_ops !== undefined) out.key_ops = usages(jwk.key_ops, method, 2);
  if (jwk.ext !== undefined) out.ext = Boolean(jwk.ext);
  if (jwk.oth !== undefined) {
    if (!isObject(jwk.oth) || typeof (jwk.oth as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') throw failed(method, `'oth' is not iterable.`);
    out.oth = Array.from(jwk.oth as unknown as Iterable<unknown>, (prime) => {
      const p = (isObject(prime) ? prime : {}) as Plain;
      const info: Plain = {};
      for (const m of ['r', 'd', 't']) if (p[m] !== undefined) info[m] = toDOMString(p[m]);
      return info;
    });
  }
  return out;
}

function keyData(format: string, value: unknown, method: string): unknown {
  return format === 'jwk' ? jsonWebKey(value, method) : bufferSource(value, method, 2);
}

// --- CryptoKey -----------------------------------------------------------------------------------

let keyHandle: (value: unknown) => number | undefined;
let checkKey: (value: unknown) => void;

export class CryptoKey {
  #handle: number;
  #type: string;
  #extractable: boolean;
  #algorithm: Plain;
  #usages: string[];

  constructor(token?: unknown, key?: KeyDescriptor) {
    checkInternal(token);
    const k = key!;
    this.#handle = k.handle;
    this.#type = k.type;
    this.#extractable = k.extractable;
    // The same objects every time they are read, as the spec's [[algorithm]]/[[usages]] caches.
    this.#algorithm = k.algorithm;
    this.#usages = k.usages;
    track(this, k.handle);
  }

  get type(): string {
    checkKey(this);
    return this.#type;
  }

  get extractable(): boolean {
    checkKey(this);
    return this.#extractable;
  }

  get algorithm(): Plain {
    checkKey(this);
    return this.#algorithm;
  }

  get usages(): string[] {
    checkKey(this);
    return this.#usages;
  }

  static {
    keyHandle = (value) => (isObject(value) && #handle in value ? (value as CryptoKey).#handle : undefined);
    checkKey = (value) => {
      if (!isObject(value) || !(#handle in value)) throw new TypeError('Illegal invocation');
    };
  }
}

setToStringTag(CryptoKey, 'CryptoKey');

function wrapKey(result: unknown): CryptoKey | { publicKey: CryptoKey; privateKey: CryptoKey } {
  const r = result as KeyDescriptor & { publicKey?: KeyDescriptor; privateKey?: KeyDescriptor };
  if (r.publicKey && r.privateKey) {
    return { publicKey: new CryptoKey(INTERNAL, r.publicKey), privateKey: new CryptoKey(INTERNAL, r.privateKey) };
  }
  return new CryptoKey(INTERNAL, r);
}

function handleOf(value: unknown, method: string, position: number): number {
  const handle = keyHandle(value);
  if (handle === undefined) throw failed(method, `parameter ${position} is not of type 'CryptoKey'.`);
  return handle;
}

// --- SubtleCrypto --------------------------------------------------------------------------------

let subtleInstance: SubtleCrypto;

function checkSubtle(self: unknown): void {
  if (self !== subtleInstance) throw new TypeError('Illegal invocation');
}

function args(given: number, needed: number, method: string): void {
  requireArgs(given, needed, `Failed to execute '${method}' on 'SubtleCrypto'`);
}

export class SubtleCrypto {
  constructor(token?: unknown) {
    checkInternal(token);
  }

  async encrypt(alg: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    checkSubtle(this);
    args(arguments.length, 3, 'encrypt');
    return call('encrypt', [algorithm(alg, 'encrypt'), handleOf(key, 'encrypt', 2), bufferSource(data, 'encrypt', 3)]);
  }

  async decrypt(alg: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    checkSubtle(this);
    args(arguments.length, 3, 'decrypt');
    return call('decrypt', [algorithm(alg, 'decrypt'), handleOf(key, 'decrypt', 2), bufferSource(data, 'decrypt', 3)]);
  }

  async sign(alg: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    checkSubtle(this);
    args(arguments.length, 3, 'sign');
    return call('sign', [algorithm(alg, 'sign'), handleOf(key, 'sign', 2), bufferSource(data, 'sign', 3)]);
  }

  async verify(alg: unknown, key: unknown, signature: unknown, data: unknown): Promise<boolean> {
    checkSubtle(this);
    args(arguments.length, 4, 'verify');
    return call('verify', [algorithm(alg, 'verify'), handleOf(key, 'verify', 2), bufferSource(signature, 'verify', 3), bufferSource(data, 'verify', 4)]);
  }

  async digest(alg: unknown, data: unknown): Promise<ArrayBuffer> {
    checkSubtle(this);
    args(arguments.length, 2, 'digest');
    return call('digest', [algorithm(alg, 'digest'), bufferSource(data, 'digest', 2)]);
  }

  async generateKey(alg: unknown, extractable: unknown, keyUsages: unknown): Promise<CryptoKey | { publicKey: CryptoKey; privateKey: CryptoKey }> {
    checkSubtle(this);
    args(arguments.length, 3, 'generateKey');
    return wrapKey(await call('generateKey', [algorithm(alg, 'generateKey'), Boolean(extractable), usages(keyUsages, 'generateKey', 3)]));
  }

  async deriveKey(alg: unknown, baseKey: unknown, derivedKeyType: unknown, extractable: unknown, keyUsages: unknown): Promise<CryptoKey> {
    checkSubtle(this);
    args(arguments.length, 5, 'deriveKey');
    const method = 'deriveKey';
    return wrapKey(
      await call(method, [algorithm(alg, method), handleOf(baseKey, method, 2), algorithm(derivedKeyType, method), Boolean(extractable), usages(keyUsages, method, 5)]),
    ) as CryptoKey;
  }

  async deriveBits(alg: unknown, baseKey: unknown, length?: unknown): Promise<ArrayBuffer> {
    checkSubtle(this);
    args(arguments.length, 2, 'deriveBits');
    const bits = length === undefined || length === null ? null : +(length as number);
    return call('deriveBits', [algorithm(alg, 'deriveBits'), handleOf(baseKey, 'deriveBits', 2), bits]);
  }

  async importKey(format: unknown, data: unknown, alg: unknown, extractable: unknown, keyUsages: unknown): Promise<CryptoKey> {
    checkSubtle(this);
    args(arguments.length, 5, 'importKey');
    const f = toDOMString(format);
    return wrapKey(
      await call('importKey', [f, keyData(f, data, 'importKey'), algorithm(alg, 'importKey'), Boolean(extractable), usages(keyUsages, 'importKey', 5)]),
    ) as CryptoKey;
  }

  async exportKey(format: unknown, key: unknown): Promise<ArrayBuffer | Plain> {
    checkSubtle(this);
    args(arguments.length, 2, 'exportKey');
    return call('exportKey', [toDOMString(format), handleOf(key, 'exportKey', 2)]);
  }

  async wrapKey(format: unknown, key: unknown, wrappingKey: unknown, wrapAlgorithm: unknown): Promise<ArrayBuffer> {
    checkSubtle(this);
    args(arguments.length, 4, 'wrapKey');
    return call('wrapKey', [toDOMString(format), handleOf(key, 'wrapKey', 2), handleOf(wrappingKey, 'wrapKey', 3), algorithm(wrapAlgorithm, 'wrapKey')]);
  }

  async unwrapKey(
    format: unknown,
    wrappedKey: unknown,
    unwrappingKey: unknown,
    unwrapAlgorithm: unknown,
    unwrappedKeyAlgorithm: unknown,
    extractable: unknown,
    keyUsages: unknown,
  ): Promise<CryptoKey> {
    checkSubtle(this);
    const method = 'unwrapKey';
    args(arguments.length, 7, method);
    return wrapKey(
      await call(method, [
        toDOMString(format),
        bufferSource(wrappedKey, method, 2),
        handleOf(unwrappingKey, method, 3),
        algorithm(unwrapAlgorithm, method),
        algorithm(unwrappedKeyAlgorithm, method),
        Boolean(extractable),
        usages(keyUsages, method, 7),
      ]),
    ) as CryptoKey;
  }

  /** workerd's constant-time comparison of two equal-length BufferSources. */
  timingSafeEqual(a: unknown, b: unknown): boolean {
    checkSubtle(this);
    args(arguments.length, 2, 'timingSafeEqual');
    const x = viewOf(a, 1);
    const y = viewOf(b, 2);
    if (x.byteLength !== y.byteLength) throw new TypeError('Input buffers must have the same byte length.');
    let diff = 0;
    for (let i = 0; i < x.byteLength; i++) diff |= x[i] ^ y[i];
    return diff === 0;
  }
}

function viewOf(value: unknown, position: number): Uint8Array {
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (isObject(value) && passes(intrinsics.bufferByteLength, value)) return new Uint8Array(value as unknown as ArrayBuffer);
  throw new TypeError(`Failed to execute 'timingSafeEqual' on 'SubtleCrypto': parameter ${position} is not of type 'BufferSource'.`);
}

setToStringTag(SubtleCrypto, 'SubtleCrypto');
subtleInstance = new SubtleCrypto(INTERNAL);

/** `crypto.subtle`. */
export const subtle: SubtleCrypto = subtleInstance;

// --- crypto.DigestStream (workerd) ---------------------------------------------------------------

const DIGESTS: Record<string, string> = { 'SHA-1': 'SHA-1', 'SHA-256': 'SHA-256', 'SHA-384': 'SHA-384', 'SHA-512': 'SHA-512', MD5: 'MD5' };
/** Bytes gathered in the isolate before they cross to the host's running hash. */
const FLUSH_BYTES = 64 * 1024;

interface DigestState {
  bytesWritten: bigint;
  digest: Promise<ArrayBuffer>;
}

let digestState: (stream: DigestStream) => DigestState;

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** A WritableStream that hashes what is written to it; `digest` resolves when it is closed. */
export class DigestStream extends WritableStream<unknown> {
  #state: DigestState;

  constructor(algorithm: unknown) {
    if (arguments.length < 1) throw new TypeError("Failed to construct 'DigestStream': 1 argument required, but only 0 present.");
    const raw = isObject(algorithm) ? algorithm.name : algorithm;
    const name = DIGESTS[toDOMString(raw).toUpperCase()];
    if (!name) throw new DOMException('Unrecognized or unimplemented digest algorithm requested.', 'NotSupportedError');
    let resolve!: (value: ArrayBuffer) => void;
    let reject!: (reason: unknown) => void;
    const state: DigestState = { bytesWritten: 0n, digest: new Promise<ArrayBuffer>((res, rej) => ((resolve = res), (reject = rej))) };
    // Nobody has to read `digest`: an aborted stream must not report an unhandled rejection.
    state.digest.catch(() => {});
    let handle = 0;
    let owner: object | null = null;
    let chunks: Uint8Array[] = [];
    let pending = 0;
    const take = () => {
      const bytes = concat(chunks, pending);
      chunks = [];
      pending = 0;
      return bytes;
    };
    super({
      async write(chunk: unknown) {
        const bytes = typeof chunk === 'string' ? utf8Encode(chunk) : copyBytes(chunk);
        if (!bytes) throw new TypeError('DigestStream accepts only strings and BufferSources.');
        state.bytesWritten += BigInt(bytes.byteLength);
        if (!bytes.byteLength) return;
        chunks.push(bytes);
        pending += bytes.byteLength;
        if (pending >= FLUSH_BYTES) {
          const first = !handle;
          handle = await call<number>('digestStream.write', [handle, name, take()]);
          if (first && owner) track(owner, handle);
        }
      },
      async close() {
        try {
          resolve(await call<ArrayBuffer>('digestStream.finish', [handle, name, take()]));
        } catch (error) {
          reject(error);
          throw error;
        }
      },
      abort(reason: unknown) {
        reject(reason);
        if (handle) call('digestStream.abort', [handle]).catch(() => {});
      },
    });
    owner = this;
    this.#state = state;
  }

  /** Resolves with the digest once the stream is closed. */
  get digest(): Promise<ArrayBuffer> {
    return digestState(this).digest;
  }

  /** Bytes written so far (a bigint, as in workerd). */
  get bytesWritten(): bigint {
    return digestState(this).bytesWritten;
  }

  static {
    digestState = (stream) => {
      if (!isObject(stream) || !(#state in stream)) throw new TypeError('Illegal invocation');
      return stream.#state;
    };
  }
}

setToStringTag(DigestStream, 'DigestStream');
