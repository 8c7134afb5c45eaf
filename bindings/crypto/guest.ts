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
import { hostCall } from '../../sandbox/bridge.js';
import { OPS } from '../../protocol/wall.js';
import type { CryptoReply } from './protocol.js';
import { intrinsics, passes } from '../../sandbox/api/brand.js';
import { DOMException } from '../../sandbox/api/dom-exception.js';
import { utf8Encode } from '../../sandbox/api/encoding.js';
import { INTERNAL, checkInternal, requireArgs, setToStringTag, toDOMString } from '../../sandbox/api/idl.js';
import { WritableStream } from '../../sandbox/api/streams.js';

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
  const reply = await hostCall<CryptoReply>(OPS.crypto, method, args, gone);
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

/** A view of a BufferSource's bytes, or null for anything else. */
function viewOf(value: unknown): Uint8Array | null {
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (isObject(value) && passes(intrinsics.bufferByteLength, value)) return new Uint8Array(value as unknown as ArrayBuffer);
  return null;
}

/** A view spanning its whole buffer: the bridge copies a view's entire buffer, so a view into a
 *  larger one is cut out first. */
function whole(view: Uint8Array): Uint8Array {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength ? view : view.slice();
}

/** A BufferSource's bytes as sent to the host. The bridge copies arguments synchronously, when
 *  `call` runs (within the method call), which is the copy the spec asks for: later changes by
 *  the caller do not reach the operation. */
function copyBytes(value: unknown): Uint8Array | null {
  const view = viewOf(value);
  return view && whole(view);
}

function bufferSource(value: unknown, method: string, position: number): Uint8Array {
  const bytes = copyBytes(value);
  if (!bytes) throw failed(method, `parameter ${position} is not of type 'BufferSource'.`);
  return bytes;
}

const NUMBER_MEMBERS = ['length', 'modulusLength', 'saltLength', 'tagLength', 'iterations'];
const BYTES_MEMBERS = ['iv', 'additionalData', 'label', 'salt', 'info', 'counter', 'publicExponent', 'context'];

/** An AlgorithmIdentifier as plain data: a string, or the members any Web Crypto algorithm
 *  dictionary defines (others are ignored, as WebIDL dictionary conversion ignores them). */
function algorithm(value: unknown, method: string): string | Plain {
  if (!isObject(value)) return toDOMString(value);
  // WebIDL would make a missing `name` a TypeError; workerd answers NotSupportedError, as for any
  // unknown algorithm, and so do we (docs/compat.md).
  const name = value.name;
  if (name === undefined) throw new DOMException('Unrecognized algorithm name.', 'NotSupportedError');
  const out: Plain = { name: toDOMString(name) };
  const namedCurve = value.namedCurve;
  if (namedCurve !== undefined) out.namedCurve = toDOMString(namedCurve);
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

const KEY_USAGES = new Set(['encrypt', 'decrypt', 'sign', 'verify', 'deriveKey', 'deriveBits', 'wrapKey', 'unwrapKey']);
const KEY_FORMATS = new Set(['raw', 'spki', 'pkcs8', 'jwk']);

/** sequence<DOMString>; as KeyUsages (`check`), an unknown usage is workerd's SyntaxError where
 *  WebIDL would throw a TypeError (docs/compat.md). */
function usages(value: unknown, method: string, position: number, check = true): string[] {
  if (!isObject(value) || typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') {
    throw failed(method, `parameter ${position} is not of type 'Array'.`);
  }
  const out: string[] = [];
  for (const item of value as unknown as Iterable<unknown>) {
    const usage = toDOMString(item);
    if (check && !KEY_USAGES.has(usage)) throw new DOMException(`Invalid key usage "${usage}".`, 'SyntaxError');
    out.push(usage);
  }
  return out;
}

/** KeyFormat; an unknown format is workerd's NotSupportedError (WebIDL: TypeError). */
function keyFormat(value: unknown): string {
  const format = toDOMString(value);
  if (!KEY_FORMATS.has(format)) throw new DOMException(`Unrecognized key format "${format}".`, 'NotSupportedError');
  return format;
}

// JWK member names, as they appear in a JsonWebKey dictionary and in an RSA key's `oth` list.
const JWK_MEMBERS = ['kty', 'use', 'alg', 'crv', 'x', 'y', 'd', 'n', 'e', 'p', 'q', 'dp', 'dq', 'qi', 'k'];
const JWK_PRIME_MEMBERS = ['r', 'd', 't'];

/** A JsonWebKey dictionary as plain data. */
function jsonWebKey(value: unknown, method: string): Plain {
  if ((value !== undefined && value !== null && !isObject(value)) || copyBytes(value)) throw failed(method, `parameter 2 is not of type 'JsonWebKey'.`);
  const jwk = (value ?? {}) as Plain;
  const out: Plain = {};
  for (const m of JWK_MEMBERS) {
    const v = jwk[m];
    if (v !== undefined) out[m] = toDOMString(v);
  }
  if (jwk.key_ops !== undefined) out.key_ops = usages(jwk.key_ops, method, 2, false);
  if (jwk.ext !== undefined) out.ext = Boolean(jwk.ext);
  if (jwk.oth !== undefined) {
    if (!isObject(jwk.oth) || typeof (jwk.oth as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') throw failed(method, `'oth' is not iterable.`);
    out.oth = Array.from(jwk.oth as unknown as Iterable<unknown>, (prime) => {
      const p = (isObject(prime) ? prime : {}) as Plain;
      const info: Plain = {};
      for (const m of JWK_PRIME_MEMBERS) if (p[m] !== undefined) info[m] = toDOMString(p[m]);
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

// workerd gives each key own, enumerable, read-only data properties (usages, algorithm,
// extractable, type, in that order) rather than the spec's prototype getters, so
// `JSON.stringify(key)` and `Object.keys(key)` show them; Cinder does the same (docs/compat.md).
export class CryptoKey {
  #handle: number;
  declare readonly usages: string[];
  declare readonly algorithm: Plain;
  declare readonly extractable: boolean;
  declare readonly type: string;

  constructor(token?: unknown, key?: KeyDescriptor) {
    checkInternal(token);
    const k = key!;
    this.#handle = k.handle;
    // The same objects every time they are read, as the spec's [[algorithm]]/[[usages]] caches.
    for (const [name, value] of [['usages', k.usages], ['algorithm', k.algorithm], ['extractable', k.extractable], ['type', k.type]] as const) {
      Object.defineProperty(this, name, { value, writable: false, enumerable: true, configurable: true });
    }
    track(this, k.handle);
  }

  static {
    keyHandle = (value) => (isObject(value) && #handle in value ? (value as CryptoKey).#handle : undefined);
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
    const f = keyFormat(format);
    return wrapKey(
      await call('importKey', [f, keyData(f, data, 'importKey'), algorithm(alg, 'importKey'), Boolean(extractable), usages(keyUsages, 'importKey', 5)]),
    ) as CryptoKey;
  }

  async exportKey(format: unknown, key: unknown): Promise<ArrayBuffer | Plain> {
    checkSubtle(this);
    args(arguments.length, 2, 'exportKey');
    return call('exportKey', [keyFormat(format), handleOf(key, 'exportKey', 2)]);
  }

  async wrapKey(format: unknown, key: unknown, wrappingKey: unknown, wrapAlgorithm: unknown): Promise<ArrayBuffer> {
    checkSubtle(this);
    args(arguments.length, 4, 'wrapKey');
    return call('wrapKey', [keyFormat(format), handleOf(key, 'wrapKey', 2), handleOf(wrappingKey, 'wrapKey', 3), algorithm(wrapAlgorithm, 'wrapKey')]);
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
        keyFormat(format),
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
    const x = comparand(a, 1);
    const y = comparand(b, 2);
    if (x.byteLength !== y.byteLength) throw new TypeError('Input buffers must have the same byte length.');
    let diff = 0;
    for (let i = 0; i < x.byteLength; i++) diff |= x[i] ^ y[i];
    return diff === 0;
  }
}

function comparand(value: unknown, position: number): Uint8Array {
  const view = viewOf(value);
  if (!view) throw new TypeError(`Failed to execute 'timingSafeEqual' on 'SubtleCrypto': parameter ${position} is not of type 'BufferSource'.`);
  return view;
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
    // Written bytes are copied once, into this buffer, and cross to the host a buffer at a time.
    let buffer: Uint8Array | null = null;
    let used = 0;
    const flush = async (bytes: Uint8Array) => {
      const first = !handle;
      handle = await call<number>('digestStream.write', [handle, name, bytes]);
      if (first && owner) track(owner, handle);
    };
    // A full buffer is handed over as it is: the bridge copies it before `call` returns.
    const take = () => {
      const bytes = !buffer ? new Uint8Array(0) : used === FLUSH_BYTES ? buffer : buffer.slice(0, used);
      used = 0;
      return bytes;
    };
    super({
      async write(chunk: unknown) {
        const bytes = typeof chunk === 'string' ? utf8Encode(chunk) : viewOf(chunk);
        if (!bytes) throw new TypeError('DigestStream is a byte stream but received an object of non-ArrayBuffer/ArrayBufferView/string type on its writable side.');
        state.bytesWritten += BigInt(bytes.byteLength);
        let offset = 0;
        while (offset < bytes.byteLength) {
          // A large chunk with nothing buffered goes as it is (one copy, by the bridge).
          if (used === 0 && bytes.byteLength - offset >= FLUSH_BYTES) {
            await flush(whole(bytes.subarray(offset)));
            return;
          }
          buffer ??= new Uint8Array(FLUSH_BYTES);
          const n = Math.min(FLUSH_BYTES - used, bytes.byteLength - offset);
          buffer.set(bytes.subarray(offset, offset + n), used);
          used += n;
          offset += n;
          if (used === FLUSH_BYTES) await flush(take());
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
