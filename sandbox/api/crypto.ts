// The non-subtle part of Web Crypto (§10): crypto.getRandomValues() and crypto.randomUUID().
// Entropy comes from the host's CSPRNG through the sync bridge op `random` (at most 65536 bytes
// per call, the same quota getRandomValues enforces).
//
// `crypto.subtle` (SubtleCrypto, delegated to the host) and workerd's `crypto.DigestStream` live
// in subtle.ts; this module only exposes them on Crypto.prototype.
import { hostCallSync } from '../bridge.js';
import { SYNC_OPS } from '../../protocol/wall.js';
import { refuseInGlobalScope } from '../global-scope.js';
import { typedArrayName } from './brand.js';
import { DOMException } from './dom-exception.js';
import { INTERNAL, checkInternal, requireArgs, setToStringTag } from './idl.js';
import type { SubtleCrypto } from '../../bindings/crypto/guest.js';

const MAX_BYTES = 65536;

// Integer typed arrays only: floats (and DataView) are a TypeMismatchError, per the spec.
const INTEGER_ARRAYS = new Set([
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'BigInt64Array',
  'BigUint64Array',
]);

function hostRandom(length: number): Uint8Array {
  return new Uint8Array(hostCallSync<ArrayBuffer>(SYNC_OPS.random, length));
}

// randomUUID() needs 16 bytes a time; a bridge call per UUID would dominate its cost, so like
// Node it draws entropy in batches. The pool lives in this isolate only and every byte is used
// once. Allocated on first use (the snapshot must hold no ArrayBuffers).
const POOL_BYTES = 16 * 64;
let pool: Uint8Array | null = null;
let poolOffset = POOL_BYTES;

function uuidBytes(): Uint8Array {
  if (poolOffset + 16 > POOL_BYTES || !pool) {
    pool = hostRandom(POOL_BYTES);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  return bytes;
}

let hex: string[] | null = null;

export class Crypto {
  constructor(token?: unknown) {
    checkInternal(token);
  }

  /** The SubtleCrypto interface (Web Crypto §10.2). */
  get subtle(): SubtleCrypto {
    checkCrypto(this);
    if (!subtle) throw new TypeError('crypto.subtle is installed in workers whose code mentions it (crypto.subtle, SubtleCrypto, CryptoKey); this one does not, and reached it by a computed name');
    return subtle;
  }

  /** Fills an integer typed array with cryptographically strong random values; returns it. */
  getRandomValues<T extends ArrayBufferView>(array: T): T {
    requireArgs(arguments.length, 1, "Failed to execute 'getRandomValues' on 'Crypto'");
    checkCrypto(this);
    refuseInGlobalScope();
    if (!ArrayBuffer.isView(array)) {
      throw new TypeError("Failed to execute 'getRandomValues' on 'Crypto': parameter 1 is not of type 'ArrayBufferView'.");
    }
    const kind = typedArrayName(array);
    if (kind === undefined || !INTEGER_ARRAYS.has(kind)) {
      throw new DOMException(
        `Failed to execute 'getRandomValues' on 'Crypto': The provided ArrayBufferView is of type '${kind ?? 'DataView'}', which is not an integer array type.`,
        'TypeMismatchError',
      );
    }
    if (array.byteLength > MAX_BYTES) {
      throw new DOMException(
        `Failed to execute 'getRandomValues' on 'Crypto': The ArrayBufferView's byte length (${array.byteLength}) exceeds the number of bytes of entropy available via this API (${MAX_BYTES}).`,
        'QuotaExceededError',
      );
    }
    if (array.byteLength > 0) {
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(hostRandom(array.byteLength));
    }
    return array;
  }

  /** A random (version 4) UUID, lowercase, as RFC 9562 §5.4 describes. */
  randomUUID(): string {
    checkCrypto(this);
    refuseInGlobalScope();
    const b = uuidBytes();
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10xx
    const h = (hex ??= Array.from({ length: 256 }, (_, i) => (i + 0x100).toString(16).slice(1)));
    return (
      h[b[0]] + h[b[1]] + h[b[2]] + h[b[3]] + '-' + h[b[4]] + h[b[5]] + '-' + h[b[6]] + h[b[7]] + '-' +
      h[b[8]] + h[b[9]] + '-' + h[b[10]] + h[b[11]] + h[b[12]] + h[b[13]] + h[b[14]] + h[b[15]]
    );
  }
}

setToStringTag(Crypto, 'Crypto');

// SubtleCrypto is an add-on (sandbox/addons/crypto-subtle.ts), installed where a worker uses it.
let subtle: SubtleCrypto | undefined;

/** Called by the add-on: `crypto.subtle`, and workerd's `crypto.DigestStream` on the prototype. */
export function installSubtle(given: SubtleCrypto, DigestStream: unknown): void {
  subtle = given;
  Object.defineProperty(Crypto.prototype, 'DigestStream', { value: DigestStream, writable: true, enumerable: false, configurable: true });
}

const instance = new Crypto(INTERNAL);

function checkCrypto(self: unknown): void {
  // Methods are brand-checked like WebIDL operations (`crypto.getRandomValues.call({}, a)` fails).
  if (self !== instance) throw new TypeError('Illegal invocation');
}

/** The `crypto` global. */
export const crypto: Crypto = instance;
