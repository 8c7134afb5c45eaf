// Primes (generatePrime, checkPrime) and finite-field Diffie-Hellman: getDiffieHellman/createDiffieHellmanGroup (the MODP groups of RFC
// 2409 and RFC 3526) and createDiffieHellman with a given prime, on BigInt inside the isolate.
// The group primes are not typed in as 6 KB of hex: each is defined by its RFC as
// 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + k), and pi is computed here to the bits the
// largest group needs, once, when a worker first asks for a group.
import { crypto as webCrypto } from './web.js';
import { modPow, isProbablePrime, randomPrime } from './crypto-rsa.js';
import { bigIntToBytes, bitLength, bytesToBigInt } from './crypto-asn1.js';
import { argTypeError, codedError, later, output, toBytes, type BufferLike, type Callback, type Input } from './crypto-util.js';

const coded = codedError;

/** floor(pi * 2^bits), by Machin's formula in fixed point with guard bits. */
function piBits(bits: number): bigint {
  const guard = 64n;
  const one = 1n << (BigInt(bits) + guard);
  const arctanInverse = (x: bigint) => {
    let sum = 0n;
    let term = one / x;
    const x2 = x * x;
    for (let k = 1n, sign = 1n; term !== 0n; k += 2n, sign = -sign) {
      sum += (sign * term) / k;
      term /= x2;
    }
    return sum;
  };
  return (16n * arctanInverse(5n) - 4n * arctanInverse(239n)) >> guard;
}

// workerd offers these five (modp1, modp2 and modp5 are too small; it refuses them, so Cinder does)
const GROUPS: Record<string, { bits: number; k: bigint }> = {
  modp14: { bits: 2048, k: 124476n },
  modp15: { bits: 3072, k: 1690314n },
  modp16: { bits: 4096, k: 240904n },
  modp17: { bits: 6144, k: 929484n },
  modp18: { bits: 8192, k: 4743158n },
};

let pi: bigint | null = null;
/** Set while a group is made: its prime is known, and testing 8192 bits for primality is slow. */
let knownPrime = false;
const primes = new Map<string, bigint>();

function groupPrime(name: string): bigint {
  const known = primes.get(name);
  if (known !== undefined) return known;
  const { bits, k } = GROUPS[name];
  pi ??= piBits(8192 - 130);
  const n = BigInt(bits);
  const scaledPi = pi >> BigInt(8192 - bits);
  const prime = (1n << n) - (1n << (n - 64n)) - 1n + (1n << 64n) * (scaledPi + k);
  primes.set(name, prime);
  return prime;
}

function isGroupPrime(p: bigint): boolean {
  const bits = bitLength(p);
  return Object.entries(GROUPS).some(([name, group]) => group.bits === bits && groupPrime(name) === p);
}

function randomBigInt(bytes: number): bigint {
  const out = new Uint8Array(bytes);
  webCrypto.getRandomValues(out);
  return bytesToBigInt(out);
}

/** verifyError as BoringSSL's DH_check reports it: NOT_SUITABLE_GENERATOR (8) or
 *  UNABLE_TO_CHECK_GENERATOR (4), P_NOT_PRIME (1), P_NOT_SAFE_PRIME (2). A group's prime is known
 *  to be a safe prime, and testing thousands of bits would be slow. */
function dhCheck(p: bigint, g: bigint): number {
  let flags = 0;
  if (g === 2n) flags |= p % 24n !== 11n ? 8 : 0;
  else if (g === 5n) flags |= p % 10n !== 3n && p % 10n !== 7n ? 8 : 0;
  else flags |= 4;
  if (knownPrime || isGroupPrime(p)) return flags;
  // informational (Node computes it at construction): a few random bases, not a proof
  const rounds = bitLength(p) >= 1024 ? 4 : 8;
  if (!isProbablePrime(p, rounds)) flags |= 1;
  else if (!isProbablePrime(p >> 1n, rounds)) flags |= 2;
  return flags;
}

export class DiffieHellman {
  #p: bigint;
  #g: bigint;
  #priv: bigint | null = null;
  #pub: bigint | null = null;
  readonly verifyError: number;

  constructor(prime: Input | number, primeEncoding?: string | Input | number, generator?: Input | number, generatorEncoding?: string) {
    if (typeof prime === 'number') {
      // Generating a safe prime of the asked size is seconds of BigInt work for 512 bits and more.
      throw coded(new Error('createDiffieHellman(primeLength) is not supported by node:crypto in Cinder: pass a prime, or use getDiffieHellman(\'modp14\') (see docs/compat.md)'), 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM');
    }
    if (typeof primeEncoding !== 'string') [generator, generatorEncoding, primeEncoding] = [primeEncoding as Input | number | undefined, generator as string | undefined, undefined];
    this.#p = bytesToBigInt(toBytes(prime, primeEncoding as string | undefined, 'prime'));
    const g = generator === undefined ? 2n : typeof generator === 'number' ? BigInt(generator) : bytesToBigInt(toBytes(generator, generatorEncoding, 'generator'));
    if (g < 2n) throw coded(new Error('Invalid Diffie-Hellman generator'), 'ERR_OSSL_DH_BAD_GENERATOR');
    this.#g = g;
    this.verifyError = dhCheck(this.#p, this.#g);
  }

  /** A group: its prime is known to be a safe prime. */
  static fromGroup(name: string): DiffieHellman {
    knownPrime = true;
    try {
      return new DiffieHellman(bigIntToBytes(groupPrime(name)), undefined, 2);
    } finally {
      knownPrime = false;
    }
  }

  generateKeys(encoding?: string): BufferLike | string {
    const size = Math.ceil(bitLength(this.#p) / 8);
    let x: bigint;
    do x = randomBigInt(size) % this.#p;
    while (x < 2n || x > this.#p - 2n);
    this.#priv = x;
    this.#pub = modPow(this.#g, x, this.#p);
    return this.getPublicKey(encoding);
  }

  computeSecret(otherPublicKey: Input, inputEncoding?: string, outputEncoding?: string): BufferLike | string {
    if (this.#priv === null) throw coded(new Error('Diffie-Hellman: no private key (call generateKeys or setPrivateKey first)'), 'ERR_CRYPTO_INVALID_STATE');
    const y = bytesToBigInt(toBytes(otherPublicKey, inputEncoding, 'otherPublicKey'));
    if (y <= 1n || y >= this.#p - 1n) throw coded(new Error('Supplied key is too small'), 'ERR_CRYPTO_INVALID_KEYLEN');
    // zero-padded to the prime's length, as Node answers
    return output(bigIntToBytes(modPow(y, this.#priv, this.#p), Math.ceil(bitLength(this.#p) / 8)), outputEncoding);
  }

  getPrime(encoding?: string): BufferLike | string {
    return output(bigIntToBytes(this.#p), encoding);
  }

  getGenerator(encoding?: string): BufferLike | string {
    return output(bigIntToBytes(this.#g), encoding);
  }

  getPublicKey(encoding?: string): BufferLike | string {
    if (this.#pub === null) throw coded(new Error('No public key - did you forget to generate one?'), 'ERR_CRYPTO_INVALID_STATE');
    return output(bigIntToBytes(this.#pub), encoding);
  }

  getPrivateKey(encoding?: string): BufferLike | string {
    if (this.#priv === null) throw coded(new Error('No private key - did you forget to generate one?'), 'ERR_CRYPTO_INVALID_STATE');
    return output(bigIntToBytes(this.#priv), encoding);
  }

  setPublicKey(publicKey: Input, encoding?: string): void {
    this.#pub = bytesToBigInt(toBytes(publicKey, encoding, 'publicKey'));
  }

  setPrivateKey(privateKey: Input, encoding?: string): void {
    this.#priv = bytesToBigInt(toBytes(privateKey, encoding, 'privateKey'));
    this.#pub = modPow(this.#g, this.#priv, this.#p);
  }
}

export function getDiffieHellman(groupName: string): DiffieHellman {
  // workerd's words
  if (typeof groupName !== 'string' || !(groupName in GROUPS)) throw new Error('Failed to init DiffieHellmanGroup: invalid group. Only groups {modp14, modp15, modp16, modp17, modp18} are supported.');
  return DiffieHellman.fromGroup(groupName);
}

export const createDiffieHellmanGroup = getDiffieHellman;
export const DiffieHellmanGroup = function DiffieHellmanGroup(name: string) {
  return getDiffieHellman(name);
} as unknown as new (name: string) => DiffieHellman;

export function createDiffieHellman(prime: Input | number, primeEncoding?: string | Input | number, generator?: Input | number, generatorEncoding?: string): DiffieHellman {
  return new DiffieHellman(prime, primeEncoding, generator, generatorEncoding);
}

// --- primes ---------------------------------------------------------------------------------------

interface PrimeOptions {
  bigint?: boolean;
  safe?: boolean;
  add?: unknown;
  rem?: unknown;
}

/** generatePrimeSync(size, { bigint, safe, add, rem }): a random prime of exactly `size` bits (a
 *  safe prime, (p-1)/2 prime too, when asked: that is a long search, on the worker's CPU). */
export function generatePrimeSync(size: number, options: PrimeOptions = {}): ArrayBuffer | bigint {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > 2 ** 31 - 1) {
    throw coded(new RangeError(`The value of "size" is out of range. It must be >= 1 && <= 2147483647. Received ${size}`), 'ERR_OUT_OF_RANGE');
  }
  if (options === null || typeof options !== 'object') throw argTypeError('options', 'of type object');
  const add = options.add === undefined ? undefined : primeOption(options.add, 'add');
  const rem = options.rem === undefined ? undefined : primeOption(options.rem, 'rem');
  if (add !== undefined && (add < 2n || bitLength(add) > size)) throw coded(new RangeError('invalid options.add'), 'ERR_OUT_OF_RANGE');
  if (rem !== undefined && (add === undefined || rem >= add)) throw coded(new RangeError('invalid options.rem'), 'ERR_OUT_OF_RANGE');
  if (size < 2 || (options.safe && size < 3)) throw coded(new RangeError('invalid size for a prime'), 'ERR_OUT_OF_RANGE');
  let prime: bigint;
  if (add !== undefined) prime = primeInProgression(size, add, rem ?? (options.safe ? 3n : 1n), !!options.safe);
  else if (options.safe) {
    do prime = 2n * randomPrime(size - 1, 1n) + 1n;
    while (!isProbablePrime(prime, 20) || bitLength(prime) !== size);
  } else {
    prime = randomPrime(size, 1n);
  }
  if (options.bigint) return prime;
  const bytes = bigIntToBytes(prime);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function primeOption(value: unknown, name: string): bigint {
  if (typeof value === 'bigint') return value;
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return bytesToBigInt(toBytes(value, undefined, `options.${name}`));
  throw argTypeError(`options.${name}`, 'of type bigint or an instance of ArrayBuffer, Buffer, TypedArray or DataView');
}

/** A prime p of `size` bits with p mod add == rem (safe: (p-1)/2 prime too). Gives up after a
 *  bounded search: with gcd(add, rem) > 1 there may be no such prime at all. */
function primeInProgression(size: number, add: bigint, rem: bigint, safe: boolean): bigint {
  const top = 1n << BigInt(size - 1);
  for (let attempt = 0; attempt < 64; attempt++) {
    let candidate = randomBigInt(Math.ceil(size / 8)) % top | top;
    candidate = candidate - (candidate % add) + rem;
    for (let step = 0; step < 4096 && bitLength(candidate) === size; step++, candidate += add) {
      if (isProbablePrime(candidate, 16) && (!safe || isProbablePrime(candidate >> 1n, 16))) return candidate;
    }
  }
  throw coded(new Error(`No ${safe ? 'safe ' : ''}prime of ${size} bits found with p mod ${add} == ${rem}`), 'ERR_OSSL_BN_NO_PRIME_CANDIDATE');
}

export function generatePrime(size: number, options: PrimeOptions | Callback<ArrayBuffer | bigint>, callback?: Callback<ArrayBuffer | bigint>): void {
  if (typeof options === 'function') [callback, options] = [options, {}];
  const opts = options;
  if (typeof callback !== 'function') throw argTypeError('callback', 'of type function');
  later(callback, () => generatePrimeSync(size, opts));
}

function candidateOf(candidate: unknown): bigint {
  if (typeof candidate === 'bigint') return candidate;
  if (candidate instanceof ArrayBuffer || ArrayBuffer.isView(candidate)) return bytesToBigInt(toBytes(candidate, undefined, 'candidate'));
  throw argTypeError('candidate', 'of type bigint or an instance of ArrayBuffer, Buffer, TypedArray or DataView');
}

export function checkPrimeSync(candidate: unknown, options: { checks?: number } = {}): boolean {
  const n = candidateOf(candidate);
  const checks = options?.checks ?? 0;
  if (typeof checks !== 'number' || !Number.isInteger(checks) || checks < 0) throw coded(new RangeError(`The value of "options.checks" is out of range. Received ${String(checks)}`), 'ERR_OUT_OF_RANGE');
  // 0 means "enough for the size", as OpenSSL decides: error below 2^-128 for random input
  return isProbablePrime(n, checks || 64);
}

export function checkPrime(candidate: unknown, options: { checks?: number } | Callback<boolean>, callback?: Callback<boolean>): void {
  if (typeof options === 'function') [callback, options] = [options, {}];
  const opts = options;
  if (typeof callback !== 'function') throw argTypeError('callback', 'of type function');
  later(callback, () => checkPrimeSync(candidate, opts));
}
