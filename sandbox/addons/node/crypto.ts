// node:crypto as far as workers commonly use it: hashes and HMAC (streaming, any encoding),
// PBKDF2 and HKDF, random bytes/ints/UUIDs, timingSafeEqual, AES in CBC/CTR/GCM through
// createCipheriv/createDecipheriv, and Web Crypto (webcrypto, subtle, getRandomValues) from the
// sandbox's globals. Everything synchronous runs inside the isolate (crypto-hash.ts,
// crypto-aes.ts): the worker's own CPU, under its CPU limit, nothing queued on the host. The
// callback forms (pbkdf2, randomBytes(n, cb), ...) run the same work and call back on a later
// microtask. Keys, signatures, RSA encryption, ECDH and scrypt are crypto-keys.ts; finite-field
// Diffie-Hellman is crypto-dh.ts (each evaluated only when a worker reads one of its names).
import { crypto, type SubtleCrypto } from './web.js';
import { Buffer } from './buffer.js';
import { HASH_NAMES, hashName, newHash, type HashCore } from './crypto-hash.js';
import { Aes, Ghash, incrementCounter } from './crypto-aes.js';
import { argTypeError, codedError, later, output, toBytes, type BufferLike, type Callback, type Input } from './crypto-util.js';

const webCrypto = crypto;

function digestAlgorithm(algorithm: unknown): string {
  if (typeof algorithm !== 'string') throw argTypeError('algorithm', 'of type string');
  const name = hashName(algorithm);
  if (!name) throw codedError(new Error(`Digest method not supported: ${algorithm}`), 'ERR_CRYPTO_INVALID_DIGEST');
  return name;
}

// --- hashes and HMAC ------------------------------------------------------------------------------

export class Hash {
  #core: HashCore;
  #done = false;

  constructor(algorithm: string | HashCore, _options?: unknown) {
    this.#core = typeof algorithm === 'string' ? newHash(digestAlgorithm(algorithm)) : algorithm;
  }

  update(data: Input, inputEncoding?: string): this {
    if (this.#done) throw codedError(new Error('Digest already called'), 'ERR_CRYPTO_HASH_FINALIZED');
    this.#core.update(toBytes(data, inputEncoding, 'data'));
    return this;
  }

  digest(encoding?: string): BufferLike | string {
    if (this.#done) throw codedError(new Error('Digest already called'), 'ERR_CRYPTO_HASH_FINALIZED');
    this.#done = true;
    return output(this.#core.digest(), encoding);
  }

  copy(): Hash {
    if (this.#done) throw codedError(new Error('Digest already called'), 'ERR_CRYPTO_HASH_FINALIZED');
    return new Hash(this.#core.clone());
  }
}

function hmacCore(name: string, key: Uint8Array): { inner: HashCore; outer: HashCore } {
  const inner = newHash(name);
  const outer = newHash(name);
  let block = key;
  if (block.length > inner.blockSize) {
    const h = newHash(name);
    h.update(block);
    block = h.digest();
  }
  const pad = new Uint8Array(inner.blockSize);
  pad.set(block);
  const ipad = pad.map((b) => b ^ 0x36);
  const opad = pad.map((b) => b ^ 0x5c);
  inner.update(ipad);
  outer.update(opad);
  return { inner, outer };
}

export class Hmac {
  #inner: HashCore;
  #outer: HashCore;
  #done = false;

  constructor(algorithm: string, key: Input, _options?: unknown) {
    const cores = hmacCore(digestAlgorithm(algorithm), toBytes(key, undefined, 'key'));
    this.#inner = cores.inner;
    this.#outer = cores.outer;
  }

  update(data: Input, inputEncoding?: string): this {
    if (this.#done) throw codedError(new Error('Digest already called'), 'ERR_CRYPTO_HASH_FINALIZED');
    this.#inner.update(toBytes(data, inputEncoding, 'data'));
    return this;
  }

  digest(encoding?: string): BufferLike | string {
    // Node answers an empty digest when called twice on an Hmac (not an error, unlike Hash).
    if (this.#done) return output(new Uint8Array(0), encoding);
    this.#done = true;
    this.#outer.update(this.#inner.digest());
    return output(this.#outer.digest(), encoding);
  }
}

export function createHash(algorithm: string, options?: unknown): Hash {
  return new Hash(algorithm, options);
}

export function createHmac(algorithm: string, key: Input, options?: unknown): Hmac {
  return new Hmac(algorithm, key, options);
}

/** crypto.hash(algorithm, data, outputEncoding = 'hex'): a one-shot digest. */
export function hash(algorithm: string, data: Input, outputEncoding: string = 'hex'): BufferLike | string {
  return new Hash(algorithm).update(data).digest(outputEncoding);
}

export function getHashes(): string[] {
  return [...HASH_NAMES];
}

// --- key derivation -------------------------------------------------------------------------------

const MAX_KEY_BYTES = 2 ** 30;

function checkLength(value: unknown, name: string, max = MAX_KEY_BYTES): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw argTypeError(name, 'an integer');
  if (value < 0 || value > max) throw codedError(new RangeError(`The value of "${name}" is out of range. It must be >= 0 && <= ${max}. Received ${value}`), 'ERR_OUT_OF_RANGE');
  return value;
}

export function pbkdf2Sync(password: Input, salt: Input, iterations: number, keylen: number, digest: string): BufferLike {
  const name = digestAlgorithm(digest);
  const pass = toBytes(password, undefined, 'password');
  const saltBytes = toBytes(salt, undefined, 'salt');
  if (typeof iterations !== 'number' || !Number.isInteger(iterations) || iterations < 1 || iterations > 2 ** 31 - 1) {
    throw codedError(new RangeError(`The value of "iterations" is out of range. It must be >= 1 && <= 2147483647. Received ${iterations}`), 'ERR_OUT_OF_RANGE');
  }
  checkLength(keylen, 'keylen', 2 ** 31 - 1);
  const { inner: innerBase, outer: outerBase } = hmacCore(name, pass);
  const prf = (data: Uint8Array) => {
    const inner = innerBase.clone();
    inner.update(data);
    const outer = outerBase.clone();
    outer.update(inner.digest());
    return outer.digest();
  };
  const out = new Uint8Array(keylen);
  const hLen = innerBase.outputSize;
  const blockInput = new Uint8Array(saltBytes.length + 4);
  blockInput.set(saltBytes);
  for (let block = 1, offset = 0; offset < keylen; block++, offset += hLen) {
    blockInput[saltBytes.length] = block >>> 24;
    blockInput[saltBytes.length + 1] = block >>> 16;
    blockInput[saltBytes.length + 2] = block >>> 8;
    blockInput[saltBytes.length + 3] = block;
    let u = prf(blockInput);
    const t = u.slice();
    for (let i = 1; i < iterations; i++) {
      u = prf(u);
      for (let j = 0; j < t.length; j++) t[j] ^= u[j];
    }
    out.set(t.subarray(0, Math.min(hLen, keylen - offset)), offset);
  }
  return output(out) as BufferLike;
}

const SUBTLE_HASHES: Record<string, string> = { sha1: 'SHA-1', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };
/** Web Crypto's PBKDF2 runs natively on the host, up to this many iterations (bindings/crypto). */
const SUBTLE_MAX_ITERATIONS = 100_000;

export function pbkdf2(password: Input, salt: Input, iterations: number, keylen: number, digest: string, callback: Callback<BufferLike>): void {
  // Arguments are checked at once (Node throws them synchronously too).
  const name = digestAlgorithm(digest);
  const pass = toBytes(password, undefined, 'password');
  const saltBytes = toBytes(salt, undefined, 'salt');
  checkLength(keylen, 'keylen', 2 ** 31 - 1);
  if (typeof callback !== 'function') throw argTypeError('callback', 'of type function');
  const hash = SUBTLE_HASHES[name];
  const nativeSubtle = webSubtle();
  if (!nativeSubtle || !hash || keylen === 0 || !Number.isInteger(iterations) || iterations < 1 || iterations > SUBTLE_MAX_ITERATIONS) {
    later(callback, () => pbkdf2Sync(password, salt, iterations, keylen, digest));
    return;
  }
  // The asynchronous form can wait: it runs as Web Crypto's PBKDF2, natively on the host, where
  // the JavaScript of pbkdf2Sync would spend the worker's CPU.
  const subtle = nativeSubtle as unknown as {
    importKey(format: string, key: Uint8Array, algorithm: string, extractable: boolean, usages: string[]): Promise<unknown>;
    deriveBits(algorithm: object, key: unknown, length: number): Promise<ArrayBuffer>;
  };
  subtle
    .importKey('raw', pass.slice(), 'PBKDF2', false, ['deriveBits'])
    .then((key) => subtle.deriveBits({ name: 'PBKDF2', hash, salt: saltBytes.slice(), iterations }, key, keylen * 8))
    .then(
      (bits) => callback(null, output(new Uint8Array(bits)) as BufferLike),
      (error: Error) => callback(error),
    );
}

function hmacOnce(name: string, key: Uint8Array, data: Uint8Array): Uint8Array {
  const { inner, outer } = hmacCore(name, key);
  inner.update(data);
  outer.update(inner.digest());
  return outer.digest();
}

/** RFC 5869 HKDF; answers an ArrayBuffer, as Node does. */
export function hkdfSync(digest: string, ikm: Input, salt: Input, info: Input, keylen: number): ArrayBuffer {
  const name = digestAlgorithm(digest);
  const hLen = newHash(name).outputSize;
  checkLength(keylen, 'keylen', 255 * hLen);
  const infoBytes = toBytes(info, undefined, 'info');
  if (infoBytes.length > 1024) throw codedError(new RangeError('The value of "info" is out of range. It must be <= 1024 bytes.'), 'ERR_OUT_OF_RANGE');
  let saltBytes = toBytes(salt, undefined, 'salt');
  if (saltBytes.length === 0) saltBytes = new Uint8Array(hLen);
  const prk = hmacOnce(name, saltBytes, toBytes(ikm, undefined, 'ikm'));
  const out = new Uint8Array(keylen);
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 1, offset = 0; offset < keylen; i++, offset += hLen) {
    const input = new Uint8Array(previous.length + infoBytes.length + 1);
    input.set(previous);
    input.set(infoBytes, previous.length);
    input[input.length - 1] = i;
    previous = hmacOnce(name, prk, input);
    out.set(previous.subarray(0, Math.min(hLen, keylen - offset)), offset);
  }
  return out.buffer;
}

export function hkdf(digest: string, ikm: Input, salt: Input, info: Input, keylen: number, callback: Callback<ArrayBuffer>): void {
  digestAlgorithm(digest);
  later(callback, () => hkdfSync(digest, ikm, salt, info, keylen));
}

// --- randomness -----------------------------------------------------------------------------------

const MAX_RANDOM = 2 ** 31 - 1;

function fillRandom(bytes: Uint8Array): void {
  // getRandomValues takes at most 65536 bytes per call.
  for (let offset = 0; offset < bytes.length; offset += 65536) webCrypto.getRandomValues(bytes.subarray(offset, Math.min(offset + 65536, bytes.length)));
}

export function randomBytes(size: number, callback?: Callback<BufferLike>): BufferLike | undefined {
  checkLength(size, 'size', MAX_RANDOM);
  const make = () => {
    const bytes = Buffer.alloc(size) as BufferLike;
    fillRandom(bytes);
    return bytes;
  };
  if (callback === undefined) return make();
  later(callback, make);
  return undefined;
}
export const pseudoRandomBytes = randomBytes;

export function randomFillSync<T extends ArrayBufferView | ArrayBuffer>(buffer: T, offset = 0, size?: number): T {
  const bytes = toBytes(buffer, undefined, 'buf');
  checkLength(offset, 'offset', bytes.length);
  const length = size === undefined ? bytes.length - offset : checkLength(size, 'size', bytes.length - offset);
  fillRandom(bytes.subarray(offset, offset + length));
  return buffer;
}

export function randomFill<T extends ArrayBufferView | ArrayBuffer>(buffer: T, ...rest: unknown[]): void {
  const callback = rest.pop();
  const [offset, size] = rest as [number | undefined, number | undefined];
  later(callback, () => randomFillSync(buffer, offset ?? 0, size));
}

export function randomUUID(_options?: unknown): string {
  return webCrypto.randomUUID();
}

const RANDOM_INT_RANGE = 2 ** 48;

/** randomInt([min,] max[, callback]): uniform in [min, max), by rejection sampling on 48 bits. */
export function randomInt(min: number, max?: number | Callback<number>, callback?: Callback<number>): number | undefined {
  if (typeof max === 'function' || max === undefined) {
    callback = max as Callback<number> | undefined;
    max = min;
    min = 0;
  }
  if (!Number.isSafeInteger(min)) throw argTypeError('min', 'a safe integer');
  if (!Number.isSafeInteger(max)) throw argTypeError('max', 'a safe integer');
  if (max <= min) throw codedError(new RangeError(`The value of "max" is out of range. It must be greater than the value of "min" (${min}). Received ${max}`), 'ERR_OUT_OF_RANGE');
  const range = max - min;
  if (range > RANDOM_INT_RANGE) throw codedError(new RangeError(`The value of "max - min" is out of range. It must be <= ${RANDOM_INT_RANGE}. Received ${range}`), 'ERR_OUT_OF_RANGE');
  const low = min;
  const pick = () => {
    const limit = RANDOM_INT_RANGE - (RANDOM_INT_RANGE % range);
    const bytes = new Uint8Array(6);
    for (;;) {
      webCrypto.getRandomValues(bytes);
      const x = bytes[0] * 2 ** 40 + bytes[1] * 2 ** 32 + bytes[2] * 2 ** 24 + bytes[3] * 2 ** 16 + bytes[4] * 2 ** 8 + bytes[5];
      if (x < limit) return low + (x % range);
    }
  };
  if (callback === undefined) return pick();
  later(callback, pick);
  return undefined;
}

export function getRandomValues<T extends ArrayBufferView | null>(array: T): T {
  return webCrypto.getRandomValues(array as never) as T;
}

export function timingSafeEqual(a: ArrayBufferView | ArrayBuffer, b: ArrayBufferView | ArrayBuffer): boolean {
  const x = toBytes(a, undefined, 'buf1');
  const y = toBytes(b, undefined, 'buf2');
  // workerd throws a TypeError with no code here (Node a RangeError): workers see workerd's.
  if (x.length !== y.length) throw new TypeError('Input buffers must have the same byte length');
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

// --- ciphers --------------------------------------------------------------------------------------

type Mode = 'cbc' | 'ctr' | 'gcm' | 'ecb';
const CIPHERS: Record<string, { keyBytes: number; mode: Mode }> = {};
for (const bits of [128, 192, 256]) {
  for (const mode of ['cbc', 'ctr', 'gcm', 'ecb'] as Mode[]) CIPHERS[`aes-${bits}-${mode}`] = { keyBytes: bits / 8, mode };
}
CIPHERS['aes128'] = CIPHERS['aes-128-cbc'];
CIPHERS['aes192'] = CIPHERS['aes-192-cbc'];
CIPHERS['aes256'] = CIPHERS['aes-256-cbc'];

export function getCiphers(): string[] {
  return Object.keys(CIPHERS);
}

interface CipherOptions {
  authTagLength?: number;
}

class CipherBase {
  protected readonly aes: Aes;
  protected readonly mode: Mode;
  protected pending = new Uint8Array(0);
  protected autoPadding = true;
  protected finished = false;
  // CBC: the previous ciphertext block; CTR/GCM: the counter block
  protected readonly chain = new Uint8Array(16);
  protected readonly keystream = new Uint8Array(16);
  protected keystreamUsed = 16;
  protected ghash: Ghash | null = null;
  protected tagMask: Uint8Array | null = null;
  protected aadLength = 0;
  protected dataLength = 0;
  protected authTagLength = 16;

  constructor(
    algorithm: string,
    key: Input,
    iv: Input | null,
    options: CipherOptions | undefined,
    protected readonly encrypting: boolean,
  ) {
    if (typeof algorithm !== 'string') throw argTypeError('cipher', 'of type string');
    const spec = CIPHERS[algorithm.toLowerCase()];
    if (!spec) throw codedError(new Error('Unknown cipher'), 'ERR_CRYPTO_UNKNOWN_CIPHER');
    const keyBytes = toBytes(key, undefined, 'key');
    // a plain Error, as workerd throws (Node: a RangeError)
    if (keyBytes.length !== spec.keyBytes) throw codedError(new Error('Invalid key length'), 'ERR_CRYPTO_INVALID_KEYLEN');
    this.aes = new Aes(keyBytes);
    this.mode = spec.mode;
    const ivBytes = iv === null || iv === undefined ? new Uint8Array(0) : toBytes(iv, undefined, 'iv');
    if (this.mode === 'gcm') {
      if (ivBytes.length === 0) throw codedError(new TypeError('Invalid initialization vector'), 'ERR_CRYPTO_INVALID_IV');
      if (options?.authTagLength !== undefined) {
        if (![4, 8, 12, 13, 14, 15, 16].includes(options.authTagLength)) throw codedError(new TypeError(`Invalid authentication tag length: ${options.authTagLength}`), 'ERR_CRYPTO_INVALID_AUTH_TAG');
        this.authTagLength = options.authTagLength;
      }
      const hashKey = new Uint8Array(16);
      this.aes.encryptBlock(hashKey, 0, hashKey, 0);
      this.ghash = new Ghash(hashKey);
      // J0: IV || 0^31 || 1 for a 96-bit IV, else GHASH(IV, padded, || 0^64 || bit length)
      if (ivBytes.length === 12) {
        this.chain.set(ivBytes);
        this.chain[15] = 1;
      } else {
        const g = new Ghash(hashKey);
        g.update(ivBytes);
        const lengths = new Uint8Array(16);
        writeLength(lengths, 8, ivBytes.length * 8);
        g.update(lengths);
        this.chain.set(g.digest());
      }
      this.tagMask = new Uint8Array(16);
      this.aes.encryptBlock(this.chain, 0, this.tagMask, 0);
      incrementCounter(this.chain, 4);
    } else if (this.mode === 'ecb') {
      if (ivBytes.length !== 0) throw codedError(new TypeError('Invalid initialization vector'), 'ERR_CRYPTO_INVALID_IV');
    } else {
      if (ivBytes.length !== 16) throw codedError(new TypeError('Invalid initialization vector'), 'ERR_CRYPTO_INVALID_IV');
      this.chain.set(ivBytes);
    }
  }

  setAutoPadding(autoPadding = true): this {
    this.autoPadding = Boolean(autoPadding);
    return this;
  }

  setAAD(aad: Input, _options?: { plaintextLength?: number }): this {
    if (!this.ghash) throw codedError(new Error('Invalid state for operation setAAD'), 'ERR_CRYPTO_INVALID_STATE');
    if (this.dataLength > 0 || this.aadLength > 0) throw codedError(new Error('Invalid state for operation setAAD'), 'ERR_CRYPTO_INVALID_STATE');
    const bytes = toBytes(aad, undefined, 'buffer');
    this.aadLength = bytes.length;
    this.ghash.update(bytes);
    return this;
  }

  update(data: Input, inputEncoding?: string, outputEncoding?: string): BufferLike | string {
    if (this.finished) throw codedError(new Error('Unsupported state'), 'ERR_CRYPTO_INVALID_STATE');
    const bytes = toBytes(data, inputEncoding, 'data');
    return output(this.process(bytes), outputEncoding);
  }

  final(outputEncoding?: string): BufferLike | string {
    if (this.finished) throw codedError(new Error('Unsupported state'), 'ERR_CRYPTO_INVALID_STATE');
    this.finished = true;
    return output(this.finish(), outputEncoding);
  }

  private process(bytes: Uint8Array): Uint8Array {
    if (this.mode === 'ctr' || this.mode === 'gcm') return this.stream(bytes);
    const all = concat(this.pending, bytes);
    // Decrypting with padding keeps the last whole block back: it may hold the padding.
    let usable = all.length - (all.length % 16);
    if (!this.encrypting && this.autoPadding && usable === all.length && usable > 0) usable -= 16;
    const out = new Uint8Array(usable);
    for (let o = 0; o < usable; o += 16) this.block(all, o, out, o);
    this.pending = all.slice(usable);
    return out;
  }

  private block(input: Uint8Array, i: number, out: Uint8Array, o: number): void {
    if (this.mode === 'ecb') {
      if (this.encrypting) this.aes.encryptBlock(input, i, out, o);
      else this.aes.decryptBlock(input, i, out, o);
      return;
    }
    if (this.encrypting) {
      for (let k = 0; k < 16; k++) this.chain[k] ^= input[i + k];
      this.aes.encryptBlock(this.chain, 0, this.chain, 0);
      out.set(this.chain, o);
    } else {
      const cipherBlock = input.slice(i, i + 16);
      this.aes.decryptBlock(cipherBlock, 0, out, o);
      for (let k = 0; k < 16; k++) out[o + k] ^= this.chain[k];
      this.chain.set(cipherBlock);
    }
  }

  private stream(bytes: Uint8Array): Uint8Array {
    const out = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) {
      if (this.keystreamUsed === 16) {
        this.aes.encryptBlock(this.chain, 0, this.keystream, 0);
        incrementCounter(this.chain, this.mode === 'gcm' ? 4 : 16);
        this.keystreamUsed = 0;
      }
      out[i] = bytes[i] ^ this.keystream[this.keystreamUsed++];
    }
    if (this.ghash) {
      // GHASH runs over whole blocks of ciphertext: partial blocks wait in `pending`.
      const cipherText = this.encrypting ? out : bytes;
      const all = concat(this.pending, cipherText);
      const whole = all.length - (all.length % 16);
      this.ghash.update(all.subarray(0, whole));
      this.pending = all.slice(whole);
    }
    this.dataLength += bytes.length;
    return out;
  }

  private finish(): Uint8Array {
    if (this.mode === 'ctr') return new Uint8Array(0);
    if (this.mode === 'gcm') {
      const ghash = this.ghash!;
      if (this.pending.length) ghash.update(this.pending);
      this.pending = new Uint8Array(0);
      const lengths = new Uint8Array(16);
      writeLength(lengths, 0, this.aadLength * 8);
      writeLength(lengths, 8, this.dataLength * 8);
      ghash.update(lengths);
      const tag = ghash.digest();
      for (let k = 0; k < 16; k++) tag[k] ^= this.tagMask![k];
      this.completeTag(tag.subarray(0, this.authTagLength));
      return new Uint8Array(0);
    }
    if (this.encrypting) {
      if (!this.autoPadding) {
        if (this.pending.length) throw codedError(new Error('wrong final block length'), 'ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH');
        return new Uint8Array(0);
      }
      const padLength = 16 - this.pending.length;
      const last = new Uint8Array(16);
      last.set(this.pending);
      last.fill(padLength, this.pending.length);
      const out = new Uint8Array(16);
      this.block(last, 0, out, 0);
      return out;
    }
    if (!this.autoPadding) {
      if (this.pending.length) throw codedError(new Error('wrong final block length'), 'ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH');
      return new Uint8Array(0);
    }
    if (this.pending.length !== 16) throw codedError(new Error('wrong final block length'), 'ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH');
    const out = new Uint8Array(16);
    this.block(this.pending, 0, out, 0);
    const padLength = out[15];
    let bad = padLength < 1 || padLength > 16 ? 1 : 0;
    for (let k = 16 - Math.min(Math.max(padLength, 1), 16); k < 16; k++) bad |= out[k] ^ padLength;
    if (bad) throw codedError(new Error('bad decrypt'), 'ERR_OSSL_BAD_DECRYPT');
    return out.slice(0, 16 - padLength);
  }

  protected completeTag(_tag: Uint8Array): void {}
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function writeLength(out: Uint8Array, offset: number, bits: number): void {
  const high = Math.floor(bits / 4294967296);
  const low = bits >>> 0;
  for (let i = 0; i < 4; i++) {
    out[offset + 3 - i] = (high >>> (8 * i)) & 255;
    out[offset + 7 - i] = (low >>> (8 * i)) & 255;
  }
}

export class Cipheriv extends CipherBase {
  #tag: Uint8Array | null = null;

  constructor(algorithm: string, key: Input, iv: Input | null, options?: CipherOptions) {
    super(algorithm, key, iv, options, true);
  }

  getAuthTag(): BufferLike {
    if (!this.ghash || !this.#tag) throw codedError(new Error('Invalid state for operation getAuthTag'), 'ERR_CRYPTO_INVALID_STATE');
    return output(this.#tag) as BufferLike;
  }

  protected override completeTag(tag: Uint8Array): void {
    this.#tag = tag.slice();
  }
}

export class Decipheriv extends CipherBase {
  #expected: Uint8Array | null = null;

  constructor(algorithm: string, key: Input, iv: Input | null, options?: CipherOptions) {
    super(algorithm, key, iv, options, false);
  }

  setAuthTag(tag: Input): this {
    if (!this.ghash || this.finished) throw codedError(new Error('Invalid state for operation setAuthTag'), 'ERR_CRYPTO_INVALID_STATE');
    const bytes = toBytes(tag, undefined, 'buffer');
    if (![4, 8, 12, 13, 14, 15, 16].includes(bytes.length)) throw codedError(new TypeError(`Invalid authentication tag length: ${bytes.length}`), 'ERR_CRYPTO_INVALID_AUTH_TAG');
    this.#expected = bytes.slice();
    this.authTagLength = bytes.length;
    return this;
  }

  protected override completeTag(tag: Uint8Array): void {
    const expected = this.#expected;
    let diff = expected === null || expected.length !== tag.length ? 1 : 0;
    if (expected) for (let k = 0; k < Math.min(expected.length, tag.length); k++) diff |= expected[k] ^ tag[k];
    if (diff) throw new Error('Unsupported state or unable to authenticate data');
  }
}

export function createCipheriv(algorithm: string, key: Input, iv: Input | null, options?: CipherOptions): Cipheriv {
  return new Cipheriv(algorithm, key, iv, options);
}

export function createDecipheriv(algorithm: string, key: Input, iv: Input | null, options?: CipherOptions): Decipheriv {
  return new Decipheriv(algorithm, key, iv, options);
}

// --- Web Crypto ---------------------------------------------------------------------------------

/** crypto.subtle when installed: it is an add-on of its own (crypto-subtle), installed for workers
 *  whose code mentions it (`subtle`, `SubtleCrypto`, `CryptoKey`); reading it otherwise throws. */
function webSubtle(): SubtleCrypto | undefined {
  try {
    return webCrypto.subtle;
  } catch {
    return undefined;
  }
}

export const webcrypto = webCrypto;
export const subtle = webSubtle();

export default {
  createHash, createHmac, hash, getHashes, Hash, Hmac, pbkdf2, pbkdf2Sync, hkdf, hkdfSync, randomBytes, pseudoRandomBytes,
  randomFill, randomFillSync, randomUUID, randomInt, getRandomValues, timingSafeEqual, getCiphers, createCipheriv,
  createDecipheriv, Cipheriv, Decipheriv, webcrypto, subtle,
};
