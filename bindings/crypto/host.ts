// Host half of crypto.subtle: every operation runs in Node's WebCrypto, and the keys stay here.
// The guest (sandbox/api/subtle.ts) holds a CryptoKey with the key's public facts (type,
// extractable, algorithm, usages) and a handle number; the Node CryptoKey lives in a per-isolate
// table under that handle. Guest-side keys that are garbage collected are reported back (in the
// next crypto call) so their host entries go too.
//
// Arguments arrive structured-cloned and already shaped by the guest (algorithms as plain objects,
// BufferSources as byte copies, keys as handles); Node's WebCrypto does the WebIDL checks and
// algorithm normalization itself. Every reply is `{ value }` or `{ error: [name, message] }`, so
// the guest can rethrow the same DOMException (an error thrown across the isolate wall would lose
// its name).
import { createHash, webcrypto, type Hash } from 'node:crypto';
import type { OpCall, OpHandler } from '../../src/runtime/contract.js';
import type { CryptoReply } from './protocol.js';
import { OPS } from '../../protocol/wall.js';
import { KeygenQueue, MAX_QUEUED_PER_ISOLATE } from './keygen-gate.js';

type NodeKey = webcrypto.CryptoKey;
type Algorithm = string | Record<string, unknown>;

/** A key as the guest sees it: public facts plus the handle of the real key kept here. */
export interface KeyDescriptor {
  handle: number;
  type: string;
  extractable: boolean;
  algorithm: Record<string, unknown>;
  usages: string[];
}


/** Live keys one isolate may hold (keys its code can still reach; collected ones are freed). */
export const MAX_KEYS_PER_ISOLATE = 10_000;
/** DigestStreams one isolate may have open at once. */
export const MAX_DIGEST_STREAMS = 1_000;

interface KeyEntry {
  key: NodeKey;
  /** workerd's legacy name for Ed25519, reported back as the key's algorithm */
  nodeEd25519?: boolean;
}

class CryptoState {
  keys = new Map<number, KeyEntry>();
  /** this isolate's RSA key generations, through the process-wide gate */
  keygens = new KeygenQueue();
  hashes = new Map<number, Hash>();
  next = 1;

  release(handles: unknown): void {
    if (!Array.isArray(handles)) return;
    for (const h of handles) {
      this.keys.delete(Number(h));
      this.hashes.delete(Number(h));
    }
  }
}

class CryptoError extends Error {
  constructor(message: string, name: string) {
    super(message);
    this.name = name;
  }
}

// Node's WebCrypto checks every argument itself (WebIDL conversions included), so it is called
// with what the guest sent, untyped.
type Loose = (...args: unknown[]) => Promise<unknown>;
const subtle = webcrypto.subtle as unknown as Record<
  'digest' | 'generateKey' | 'importKey' | 'exportKey' | 'sign' | 'verify' | 'encrypt' | 'decrypt' | 'deriveBits' | 'deriveKey' | 'wrapKey' | 'unwrapKey',
  Loose
>;

// Node 20 also implements Ed448 and X448; workerd does not, and neither do we, so code written
// here runs there too.
const UNSUPPORTED = new Set(['ED448', 'X448']);
const NODE_ED25519 = 'NODE-ED25519';
const HASHES: Record<string, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512', MD5: 'md5' };

function algorithmName(algorithm: unknown): string {
  if (typeof algorithm === 'string') return algorithm.toUpperCase();
  if (algorithm && typeof algorithm === 'object' && typeof (algorithm as { name?: unknown }).name === 'string') {
    return ((algorithm as { name: string }).name).toUpperCase();
  }
  return '';
}

/** The algorithm Node should see: workerd's NODE-ED25519 is Ed25519; Ed448/X448 are refused. */
function forNode(algorithm: unknown, what: string): Algorithm {
  const name = algorithmName(algorithm);
  if (UNSUPPORTED.has(name)) throw new CryptoError(`Unrecognized ${what} algorithm "${name === 'ED448' ? 'Ed448' : 'X448'}" requested.`, 'NotSupportedError');
  if (name === NODE_ED25519) {
    if (typeof algorithm === 'string') return 'Ed25519';
    const { namedCurve, ...rest } = algorithm as Record<string, unknown>;
    if (namedCurve !== undefined && String(namedCurve).toUpperCase() !== NODE_ED25519) {
      throw new CryptoError(`Unrecognized NODE-ED25519 curve "${String(namedCurve)}" requested.`, 'NotSupportedError');
    }
    return { ...rest, name: 'Ed25519' };
  }
  return algorithm as Algorithm;
}

function isNodeEd25519(algorithm: unknown): boolean {
  return algorithmName(algorithm) === NODE_ED25519;
}

// Members in the order workerd lists them (Node puts HMAC's length before its hash), since a
// worker may serialize key.algorithm.
const MEMBER_ORDER = ['name', 'namedCurve', 'modulusLength', 'publicExponent', 'hash', 'length'];
const memberRank = (k: string) => (MEMBER_ORDER.includes(k) ? MEMBER_ORDER.indexOf(k) : MEMBER_ORDER.length);

/** A plain, cloneable copy of a Node key's algorithm dictionary. */
function plainAlgorithm(algorithm: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(algorithm).sort((a, b) => memberRank(a) - memberRank(b))) {
    const v = algorithm[k];
    if (v instanceof Uint8Array) out[k] = new Uint8Array(v);
    else if (v && typeof v === 'object') out[k] = plainAlgorithm(v as Record<string, unknown>);
    else out[k] = v;
  }
  return out;
}

// KeyUsage in its enum order: workerd (like browsers) lists a key's usages in this order, once
// each, whatever order they were asked for in.
const USAGE_ORDER = ['encrypt', 'decrypt', 'sign', 'verify', 'deriveKey', 'deriveBits', 'wrapKey', 'unwrapKey'];

function canonicalUsages(usages: readonly string[]): string[] {
  return USAGE_ORDER.filter((u) => usages.includes(u));
}

// Exported JWK members in workerd's order: kty, key_ops, alg, ext, then the key's own members.
const JWK_MEMBERS: Record<string, string[]> = {
  oct: ['k'],
  RSA: ['d', 'n', 'e', 'p', 'q', 'dp', 'dq', 'qi', 'oth'],
  EC: ['crv', 'x', 'y', 'd'],
  OKP: ['crv', 'x', 'd'],
};

/** An exported JWK as workerd writes it: its member order, key_ops in usage order, and the JOSE
 *  "EdDSA" alg for Ed25519 keys (none for NODE-ED25519 ones). */
function workerdJwk(jwk: Record<string, unknown>, entry: KeyEntry): Record<string, unknown> {
  const out: Record<string, unknown> = { kty: jwk.kty };
  if (Array.isArray(jwk.key_ops)) out.key_ops = canonicalUsages(jwk.key_ops as string[]);
  if (jwk.alg !== undefined && !entry.nodeEd25519) out.alg = jwk.alg === 'Ed25519' ? 'EdDSA' : jwk.alg;
  if (jwk.ext !== undefined) out.ext = jwk.ext;
  for (const member of JWK_MEMBERS[String(jwk.kty)] ?? []) if (jwk[member] !== undefined) out[member] = jwk[member];
  for (const [member, value] of Object.entries(jwk)) if (!(member in out) && member !== 'alg') out[member] = value;
  return out;
}

function store(state: CryptoState, key: NodeKey, nodeEd25519: boolean): KeyDescriptor {
  if (state.keys.size >= MAX_KEYS_PER_ISOLATE) {
    throw new CryptoError(`Too many live CryptoKeys in this isolate (at most ${MAX_KEYS_PER_ISOLATE}).`, 'OperationError');
  }
  const handle = state.next++;
  state.keys.set(handle, { key, nodeEd25519 });
  return {
    handle,
    type: key.type,
    extractable: key.extractable,
    algorithm: nodeEd25519 ? { name: NODE_ED25519, namedCurve: NODE_ED25519 } : plainAlgorithm(key.algorithm as unknown as Record<string, unknown>),
    usages: canonicalUsages(key.usages),
  };
}

function storeResult(state: CryptoState, result: NodeKey | webcrypto.CryptoKeyPair, nodeEd25519: boolean): unknown {
  if ('privateKey' in result && 'publicKey' in result) {
    return { publicKey: store(state, result.publicKey, nodeEd25519), privateKey: store(state, result.privateKey, nodeEd25519) };
  }
  return store(state, result as NodeKey, nodeEd25519);
}

function entryOf(state: CryptoState, handle: unknown): KeyEntry {
  const entry = state.keys.get(Number(handle));
  if (!entry) throw new CryptoError('The key is not a CryptoKey of this worker.', 'InvalidAccessError');
  return entry;
}

function keyOf(state: CryptoState, handle: unknown): NodeKey {
  return entryOf(state, handle).key;
}

/** An operation's algorithm, with an ECDH/X25519 `public` key handle resolved. */
function operationAlgorithm(state: CryptoState, algorithm: unknown, what: string): Algorithm {
  const mapped = forNode(algorithm, what);
  if (typeof mapped === 'object' && mapped !== null && 'public' in mapped) {
    return { ...mapped, public: keyOf(state, mapped.public) };
  }
  return mapped;
}

function hashName(algorithm: unknown): string {
  const node = HASHES[algorithmName(algorithm)];
  if (!node) throw new CryptoError('Unrecognized or unimplemented digest algorithm requested.', 'NotSupportedError');
  return node;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function bytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError('expected bytes');
}

// Work done here is host CPU on a threadpool every tenant shares, so the expensive knobs are
// bounded: RSA keys of 256..16384 bits in steps of 128 with exponent 3 or 65537 (workerd's own
// checks) and, in Cinder, at most MAX_RSA_MODULUS_BITS (a 16,384-bit key takes seconds to make and
// cannot be cancelled); PBKDF2 at most 100,000 iterations (Cloudflare's production limit; workerd
// run locally has none), and at most MAX_PBKDF2_BLOCKS output blocks' worth of those iterations
// (each block of output is the whole iteration count again: a 1 MB derivation at 100,000
// iterations would hold a threadpool thread for minutes).
export const MAX_PBKDF2_ITERATIONS = 100_000;
export const MAX_PBKDF2_BLOCKS = 8;
export const MAX_RSA_MODULUS_BITS = 4096;

function checkKeyGeneration(algorithm: unknown): void {
  if (!algorithm || typeof algorithm !== 'object' || !algorithmName(algorithm).startsWith('RSA')) return;
  const { modulusLength, publicExponent } = algorithm as { modulusLength?: unknown; publicExponent?: unknown };
  if (publicExponent instanceof Uint8Array) {
    let e = 0;
    for (const b of publicExponent) e = e * 256 + b;
    if (e !== 3 && e !== 65537) throw new CryptoError(`The "publicExponent" must be either 3 or 65537, but got ${e}.`, 'OperationError');
  }
  if (typeof modulusLength === 'number' && (modulusLength < 256 || modulusLength > 16384 || modulusLength % 128 !== 0)) {
    throw new CryptoError(`The modulus length must be a multiple of 128 between 256 and 16384, but ${modulusLength} was requested.`, 'OperationError');
  }
  if (typeof modulusLength === 'number' && modulusLength > MAX_RSA_MODULUS_BITS) {
    throw new CryptoError(`RSA key generation is limited to ${MAX_RSA_MODULUS_BITS}-bit moduli on this server, but ${modulusLength} was requested.`, 'OperationError');
  }
}

const HASH_BITS: Record<string, number> = { 'SHA-1': 160, 'SHA-256': 256, 'SHA-384': 384, 'SHA-512': 512 };

/** `lengthBits`: what the derivation is asked for (deriveKey: the derived key's length). */
function checkDerivation(algorithm: unknown, lengthBits: number): void {
  if (algorithmName(algorithm) !== 'PBKDF2') return;
  const iterations = (algorithm as { iterations?: unknown }).iterations;
  if (typeof iterations === 'number' && iterations > MAX_PBKDF2_ITERATIONS) {
    throw new CryptoError(`Pbkdf2 failed: iteration counts above ${MAX_PBKDF2_ITERATIONS} are not supported (requested ${iterations}).`, 'NotSupportedError');
  }
  const hash = algorithmName((algorithm as { hash?: unknown }).hash);
  const blocks = Math.ceil(lengthBits / (HASH_BITS[hash] ?? 160));
  if (typeof iterations === 'number' && Number.isFinite(lengthBits) && blocks * iterations > MAX_PBKDF2_BLOCKS * MAX_PBKDF2_ITERATIONS) {
    throw new CryptoError(
      `Pbkdf2 failed: ${lengthBits} bits at ${iterations} iterations is ${blocks} blocks of ${hash}, over this server's limit of ${MAX_PBKDF2_BLOCKS} blocks at ${MAX_PBKDF2_ITERATIONS} iterations (or more blocks at fewer).`,
      'NotSupportedError',
    );
  }
}

/** The length deriveKey asks of the derivation: the derived key's (HMAC without one: its hash's block). */
function derivedKeyBits(derivedKeyType: unknown): number {
  const length = (derivedKeyType as { length?: unknown } | null)?.length;
  if (typeof length === 'number') return length;
  const hash = algorithmName((derivedKeyType as { hash?: unknown } | null)?.hash);
  return hash === 'SHA-384' || hash === 'SHA-512' ? 1024 : 512;
}

/** PBKDF2 runs on the shared threadpool: through the same gate as RSA generation, time charged. */
function gatedDerivation<T>(state: CryptoState, algorithm: unknown, call: OpCall, work: () => Promise<T>): Promise<T> {
  if (algorithmName(algorithm) !== 'PBKDF2') return work();
  return state.keygens.run(
    work,
    (ms) => {
      if (call.invocation) call.invocation.hostWorkMs += ms;
    },
    () => new CryptoError(`Too many PBKDF2 derivations and RSA key generations in progress in this worker (at most ${MAX_QUEUED_PER_ISOLATE + 1}).`, 'OperationError'),
  );
}

type Method = (state: CryptoState, args: unknown[], call: OpCall) => Promise<unknown> | unknown;


const methods: Record<string, Method> = {
  async digest(_state, [algorithm, data]) {
    if (algorithmName(algorithm) === 'MD5') return toArrayBuffer(createHash('md5').update(bytes(data)).digest());
    return subtle.digest(algorithm, bytes(data));
  },

  async generateKey(state, [algorithm, extractable, usages], call) {
    checkKeyGeneration(algorithm);
    const generate = () => subtle.generateKey(forNode(algorithm, 'key generation'), Boolean(extractable), usages);
    // RSA generation is the slow kind: through the gate (keygen-gate.ts), its running time metered
    // to the invocation. (workerd runs it on the isolate's thread, inside the CPU limit; here the
    // gate bounds it instead, so that a 2048-bit key still fits the default 50 ms.)
    const key = algorithmName(algorithm).startsWith('RSA')
      ? await state.keygens.run(
          generate,
          (ms) => {
            if (call.invocation) call.invocation.hostWorkMs += ms;
          },
          () => new CryptoError(`Too many RSA key generations in progress in this worker (at most ${MAX_QUEUED_PER_ISOLATE + 1}).`, 'OperationError'),
        )
      : await generate();
    return storeResult(state, key as NodeKey | webcrypto.CryptoKeyPair, isNodeEd25519(algorithm));
  },

  async importKey(state, [format, keyData, algorithm, extractable, usages]) {
    const key = await subtle.importKey(
      format,
      format === 'jwk' ? keyData : bytes(keyData),
      forNode(algorithm, 'key import'),
      Boolean(extractable),
      usages,
    );
    return store(state, key as NodeKey, isNodeEd25519(algorithm));
  },

  async exportKey(state, [format, handle]) {
    const entry = entryOf(state, handle);
    // workerd refuses a non-extractable key before asking whether its algorithm can be exported
    // at all (Node 22+ asks the other way round: PBKDF2 keys answer NotSupportedError).
    if (!entry.key.extractable) throw new CryptoError('Key is not extractable.', 'InvalidAccessError');
    const exported = await subtle.exportKey(format, entry.key);
    return format === 'jwk' ? workerdJwk(exported as Record<string, unknown>, entry) : exported;
  },

  async sign(state, [algorithm, handle, data]) {
    const key = keyOf(state, handle);
    return subtle.sign(operationAlgorithm(state, algorithm, 'signing'), key, bytes(data));
  },

  async verify(state, [algorithm, handle, signature, data]) {
    const key = keyOf(state, handle);
    return subtle.verify(operationAlgorithm(state, algorithm, 'signing'), key, bytes(signature), bytes(data));
  },

  async encrypt(state, [algorithm, handle, data]) {
    const key = keyOf(state, handle);
    return subtle.encrypt(operationAlgorithm(state, algorithm, 'encryption'), key, bytes(data));
  },

  async decrypt(state, [algorithm, handle, data]) {
    const key = keyOf(state, handle);
    return subtle.decrypt(operationAlgorithm(state, algorithm, 'encryption'), key, bytes(data));
  },

  async deriveBits(state, [algorithm, handle, length], call) {
    const key = keyOf(state, handle);
    checkDerivation(algorithm, Number(length));
    const alg = operationAlgorithm(state, algorithm, 'derivation');
    return gatedDerivation(state, algorithm, call, () => subtle.deriveBits(alg, key, length as number));
  },

  async deriveKey(state, [algorithm, handle, derivedKeyType, extractable, usages], call) {
    const key = keyOf(state, handle);
    checkDerivation(algorithm, derivedKeyBits(derivedKeyType));
    const derived = await gatedDerivation(state, algorithm, call, () =>
      subtle.deriveKey(operationAlgorithm(state, algorithm, 'derivation'), key, forNode(derivedKeyType, 'key import'), Boolean(extractable), usages),
    );
    return store(state, derived as NodeKey, isNodeEd25519(derivedKeyType));
  },

  async wrapKey(state, [format, handle, wrappingHandle, wrapAlgorithm]) {
    const key = keyOf(state, handle);
    const wrappingKey = keyOf(state, wrappingHandle);
    return subtle.wrapKey(format, key, wrappingKey, operationAlgorithm(state, wrapAlgorithm, 'encryption'));
  },

  async unwrapKey(state, [format, wrapped, unwrappingHandle, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, usages]) {
    const unwrappingKey = keyOf(state, unwrappingHandle);
    const key = await subtle.unwrapKey(
      format,
      bytes(wrapped),
      unwrappingKey,
      operationAlgorithm(state, unwrapAlgorithm, 'encryption'),
      forNode(unwrappedKeyAlgorithm, 'key import'),
      Boolean(extractable),
      usages,
    );
    return store(state, key as NodeKey, isNodeEd25519(unwrappedKeyAlgorithm));
  },

  // crypto.DigestStream: the hash state lives here while the guest writes.
  'digestStream.write'(state, [handle, algorithm, data]) {
    let id = Number(handle);
    if (!id) {
      if (state.hashes.size >= MAX_DIGEST_STREAMS) throw new CryptoError(`Too many open DigestStreams (at most ${MAX_DIGEST_STREAMS}).`, 'OperationError');
      id = state.next++;
      state.hashes.set(id, createHash(hashName(algorithm)));
    }
    const hash = state.hashes.get(id);
    if (!hash) throw new CryptoError('The DigestStream is closed.', 'InvalidStateError');
    hash.update(bytes(data));
    return id;
  },

  'digestStream.finish'(state, [handle, algorithm, data]) {
    const id = Number(handle);
    const hash = id ? state.hashes.get(id) : createHash(hashName(algorithm));
    if (!hash) throw new CryptoError('The DigestStream is closed.', 'InvalidStateError');
    state.hashes.delete(id);
    hash.update(bytes(data));
    return toArrayBuffer(hash.digest());
  },

  'digestStream.abort'(state, [handle]) {
    state.hashes.delete(Number(handle));
    return undefined;
  },
};

// DOMException names Web Crypto uses; a Node error with another name becomes an OperationError.
const DOM_NAMES = new Set(['NotSupportedError', 'InvalidAccessError', 'DataError', 'OperationError', 'SyntaxError', 'InvalidStateError', 'QuotaExceededError', 'NotAllowedError']);

function replyError(error: unknown): CryptoReply {
  const e = error as { name?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const name = typeof e?.name === 'string' ? e.name : '';
  if (DOM_NAMES.has(name)) return { error: [name, message] };
  if (error instanceof TypeError || name === 'TypeError') return { error: ['TypeError', message] };
  if (error instanceof RangeError) return { error: ['RangeError', message] };
  return { error: ['OperationError', message || 'The operation failed for an operation-specific reason'] };
}

/** The `crypto` op: args are [method, methodArgs, handles the guest no longer holds]. */
export const cryptoOp: OpHandler = async (call: OpCall, args: unknown[]): Promise<CryptoReply> => {
  const [method, methodArgs, released] = args;
  const state = call.isolateState(OPS.crypto, () => new CryptoState());
  try {
    const run = typeof method === 'string' && Object.hasOwn(methods, method) ? methods[method] : undefined;
    if (!run || !Array.isArray(methodArgs)) throw new TypeError(`crypto: unknown operation ${String(method)}`);
    // Resolve this call's key handles before dropping released ones (a key in use is still held
    // by the guest, so it cannot be among them; this keeps it so even for a confused guest).
    const pending = run(state, methodArgs, call);
    state.release(released);
    return { value: await pending };
  } catch (error) {
    state.release(released);
    return replyError(error);
  }
};

/** Live key count for an isolate's state (tests and stats). */
export function liveKeys(state: unknown): number {
  return state instanceof CryptoState ? state.keys.size : 0;
}
