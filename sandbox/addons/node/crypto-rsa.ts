// RSA on BigInt, inside the isolate: key generation, PKCS#1 v1.5 and PSS signatures, OAEP and
// PKCS#1 v1.5 encryption (RFC 8017). V8's BigInt arithmetic is not constant-time, so private-key
// operations are kept from leaking what they work on as far as JavaScript can: the base is blinded
// (a fresh random r per call, so the exponentiation never runs on a value the caller chose), the
// CRT exponents are blinded (d_p + k(p-1), fresh k per call), the exponentiation does the same
// operations whatever the exponent's digits, and the result is checked by re-applying the public
// exponent (which also catches a fault in the CRT halves). Padding checks on decryption walk the
// whole block whatever they find, and fail with one error.
import { crypto } from './web.js';
import { newHash } from './crypto-hash.js';
import { bigIntToBytes, bitLength, bytesToBigInt } from './crypto-asn1.js';
import { codedError } from './crypto-util.js';

export interface RsaKey {
  n: bigint;
  e: bigint;
  d?: bigint;
  p?: bigint;
  q?: bigint;
  dp?: bigint;
  dq?: bigint;
  qi?: bigint;
}

export function cryptoError(message: string, code: string): Error {
  return codedError(new Error(message), code);
}

function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 65536) crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + 65536)));
  return out;
}

export function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  if (modulus === 1n) return 0n;
  base %= modulus;
  if (base < 0n) base += modulus;
  // a 4-bit fixed window: 2^4 precomputed powers, one multiplication per window
  const table: bigint[] = [1n, base];
  for (let i = 2; i < 16; i++) table.push((table[i - 1] * base) % modulus);
  const bits = exponent.toString(16);
  let result = 1n;
  for (let i = 0; i < bits.length; i++) {
    if (i > 0) for (let k = 0; k < 4; k++) result = (result * result) % modulus;
    // a multiplication for every window, zero or not: the sequence of operations depends only on
    // the exponent's length, not on its digits
    result = (result * table[parseInt(bits[i], 16)]) % modulus;
  }
  return result;
}

export function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [((a % m) + m) % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const quotient = oldR / r;
    [oldR, r] = [r, oldR - quotient * r];
    [oldS, s] = [s, oldS - quotient * s];
  }
  if (oldR !== 1n) throw cryptoError('no inverse', 'ERR_OSSL_BN_NO_INVERSE');
  return ((oldS % m) + m) % m;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Uniform in [2, n - 2]. */
function randomBelow(n: bigint): bigint {
  const bytes = Math.ceil(bitLength(n) / 8);
  for (;;) {
    const r = bytesToBigInt(randomBytes(bytes)) % n;
    if (r >= 2n && r <= n - 2n) return r;
  }
}

// the first 2048 odd primes, by a sieve (evaluated whenever node:crypto is imported: keep it cheap)
const SMALL_PRIMES: number[] = [];
{
  const limit = 18_000; // the 2049th prime is 17,863
  const composite = new Uint8Array(limit);
  for (let n = 3; n < limit && SMALL_PRIMES.length < 2048; n += 2) {
    if (composite[n]) continue;
    SMALL_PRIMES.push(n);
    for (let m = n * n; m < limit; m += 2 * n) composite[m] = 1;
  }
}

function millerRabin(n: bigint, rounds: number): boolean {
  const nm1 = n - 1n;
  let d = nm1;
  let s = 0;
  while ((d & 1n) === 0n) {
    d >>= 1n;
    s++;
  }
  for (let round = 0; round < rounds; round++) {
    const a = round === 0 ? 2n : randomBelow(n);
    let x = modPow(a, d, n);
    if (x === 1n || x === nm1) continue;
    let witness = true;
    for (let i = 1; i < s; i++) {
      x = (x * x) % n;
      if (x === nm1) {
        witness = false;
        break;
      }
    }
    if (witness) return false;
  }
  return true;
}

export function isProbablePrime(n: bigint, rounds = 20): boolean {
  if (n < 2n) return false;
  if (n === 2n) return true;
  for (const p of SMALL_PRIMES.slice(0, 64)) {
    if (n === BigInt(p)) return true;
    if (n % BigInt(p) === 0n) return false;
  }
  if (n === 2n) return true;
  if ((n & 1n) === 0n) return false;
  return millerRabin(n, rounds);
}

/** A random prime of exactly `bits` bits with its top two bits set (so p*q has 2*bits bits), and
 *  p - 1 prime to e. Candidates are sieved by the small primes incrementally, as OpenSSL does. */
export function randomPrime(bits: number, e: bigint): bigint {
  const rounds = bits >= 1024 ? 5 : bits >= 512 ? 8 : 16;
  if (bits <= 16) {
    // too few bits for the sieve (it would take the small primes themselves for composites)
    for (;;) {
      const n = (bytesToBigInt(randomBytes(2)) & ((1n << BigInt(bits)) - 1n)) | (1n << BigInt(bits - 1));
      if (isProbablePrime(n, rounds) && gcd(n - 1n, e) === 1n) return n;
    }
  }
  for (;;) {
    const bytes = randomBytes(Math.ceil(bits / 8));
    let start = bytesToBigInt(bytes) >> BigInt(bytes.length * 8 - bits);
    start |= (3n << BigInt(bits - 2)) | 1n;
    const residues = SMALL_PRIMES.map((p) => Number(start % BigInt(p)));
    for (let delta = 0; delta < 1 << 16; delta += 2) {
      let composite = false;
      for (let i = 0; i < SMALL_PRIMES.length; i++) {
        if ((residues[i] + delta) % SMALL_PRIMES[i] === 0) {
          composite = true;
          break;
        }
      }
      if (composite) continue;
      const candidate = start + BigInt(delta);
      if (bitLength(candidate) !== bits) break;
      if (gcd(candidate - 1n, e) !== 1n) continue;
      if (millerRabin(candidate, rounds)) return candidate;
    }
  }
}

export function generateRsaKey(modulusBits: number, e: bigint): RsaKey {
  const pBits = Math.ceil(modulusBits / 2);
  for (;;) {
    const p = randomPrime(pBits, e);
    const q = randomPrime(modulusBits - pBits, e);
    if (p === q) continue;
    const n = p * q;
    if (bitLength(n) !== modulusBits) continue;
    const [big, small] = p > q ? [p, q] : [q, p];
    const lambda = ((big - 1n) * (small - 1n)) / gcd(big - 1n, small - 1n);
    const d = modInverse(e, lambda);
    return { n, e, d, p: big, q: small, dp: d % (big - 1n), dq: d % (small - 1n), qi: modInverse(small, big) };
  }
}

export function modulusBytes(key: RsaKey): number {
  return Math.ceil(bitLength(key.n) / 8);
}

const exponentBlind = () => bytesToBigInt(randomBytes(8)) | 1n;

/** m^d mod n, blinded, by CRT when the key has its factors; verified by m == s^e. */
export function rsaPrivate(key: RsaKey, m: bigint): bigint {
  const { n, e, d } = key;
  if (d === undefined) throw cryptoError('A private key is needed for this operation', 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE');
  if (m >= n) throw cryptoError('data too large for modulus', 'ERR_OSSL_RSA_DATA_TOO_LARGE_FOR_MODULUS');
  let r: bigint;
  do r = randomBelow(n);
  while (gcd(r, n) !== 1n);
  const blinded = (m * modPow(r, e, n)) % n;
  let s: bigint;
  if (key.p && key.q && key.dp !== undefined && key.dq !== undefined && key.qi !== undefined) {
    // the exponents blinded too (d_p + k(p-1) gives the same result for a fresh random k), so no
    // two operations run the same exponent
    const s1 = modPow(blinded, key.dp + exponentBlind() * (key.p - 1n), key.p);
    const s2 = modPow(blinded, key.dq + exponentBlind() * (key.q - 1n), key.q);
    const h = (((s1 - s2) % key.p) + key.p) % key.p;
    s = s2 + ((h * key.qi) % key.p) * key.q;
  } else {
    s = modPow(blinded, d, n);  // no factors (a JWK with only n, e, d): the base is still blinded
  }
  const result = (s * modInverse(r, n)) % n;
  if (modPow(result, e, n) !== m) throw cryptoError('RSA private key operation failed its check', 'ERR_OSSL_RSA_INTERNAL_ERROR');
  return result;
}

export function rsaPublic(key: RsaKey, c: bigint): bigint {
  if (c >= key.n) throw cryptoError('data too large for modulus', 'ERR_OSSL_RSA_DATA_TOO_LARGE_FOR_MODULUS');
  return modPow(c, key.e, key.n);
}

function digest(hash: string, ...parts: Uint8Array[]): Uint8Array {
  const h = newHash(hash);
  for (const part of parts) h.update(part);
  return h.digest();
}

function hashLength(hash: string): number {
  return newHash(hash).outputSize;
}

function mgf1(hash: string, seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const counter = new Uint8Array(4);
  for (let i = 0, offset = 0; offset < length; i++) {
    counter[0] = i >>> 24;
    counter[1] = i >>> 16;
    counter[2] = i >>> 8;
    counter[3] = i;
    const block = digest(hash, seed, counter);
    out.set(block.subarray(0, Math.min(block.length, length - offset)), offset);
    offset += block.length;
  }
  return out;
}

// --- signatures -----------------------------------------------------------------------------------

const DIGEST_INFO: Record<string, string> = {
  md5: '3020300c06082a864886f70d020505000410',
  sha1: '3021300906052b0e03021a05000414',
  sha224: '302d300d06096086480165030402040500041c',
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function emsaPkcs1(hash: string, hashed: Uint8Array, k: number): Uint8Array {
  const prefix = DIGEST_INFO[hash];
  if (!prefix) throw cryptoError(`Digest ${hash} is not supported for RSA PKCS#1 v1.5 signatures`, 'ERR_CRYPTO_INVALID_DIGEST');
  const t = new Uint8Array([...hexBytes(prefix), ...hashed]);
  if (k < t.length + 11) throw cryptoError('digest too big for rsa key', 'ERR_OSSL_RSA_DIGEST_TOO_BIG_FOR_RSA_KEY');
  const em = new Uint8Array(k).fill(0xff);
  em[0] = 0;
  em[1] = 1;
  em[k - t.length - 1] = 0;
  em.set(t, k - t.length);
  return em;
}

export const PSS_SALT_DIGEST = -1;
export const PSS_SALT_MAX = -2;

export function signPkcs1(key: RsaKey, hash: string, hashed: Uint8Array): Uint8Array {
  const k = modulusBytes(key);
  return bigIntToBytes(rsaPrivate(key, bytesToBigInt(emsaPkcs1(hash, hashed, k))), k);
}

export function verifyPkcs1(key: RsaKey, hash: string, hashed: Uint8Array, signature: Uint8Array): boolean {
  const k = modulusBytes(key);
  if (signature.length !== k) return false;
  const s = bytesToBigInt(signature);
  if (s >= key.n) return false;
  const em = bigIntToBytes(rsaPublic(key, s), k);
  const expected = emsaPkcs1(hash, hashed, k);
  let diff = 0;
  for (let i = 0; i < k; i++) diff |= em[i] ^ expected[i];
  return diff === 0;
}

export function signPss(key: RsaKey, hash: string, hashed: Uint8Array, saltLength: number): Uint8Array {
  const modBits = bitLength(key.n);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = hashLength(hash);
  const sLen = saltLength === PSS_SALT_DIGEST ? hLen : saltLength === PSS_SALT_MAX ? emLen - hLen - 2 : saltLength;
  if (sLen < 0 || emLen < hLen + sLen + 2) throw cryptoError('data too large for key size', 'ERR_OSSL_RSA_DATA_TOO_LARGE_FOR_KEY_SIZE');
  const salt = randomBytes(sLen);
  const h = digest(hash, new Uint8Array(8), hashed, salt);
  const db = new Uint8Array(emLen - hLen - 1);
  db[emLen - sLen - hLen - 2] = 1;
  db.set(salt, emLen - sLen - hLen - 1);
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i] ^= mask[i];
  db[0] &= 0xff >>> (8 * emLen - emBits);
  const em = new Uint8Array(emLen);
  em.set(db);
  em.set(h, db.length);
  em[emLen - 1] = 0xbc;
  const k = modulusBytes(key);
  return bigIntToBytes(rsaPrivate(key, bytesToBigInt(em)), k);
}

export function verifyPss(key: RsaKey, hash: string, hashed: Uint8Array, signature: Uint8Array, saltLength: number): boolean {
  const k = modulusBytes(key);
  if (signature.length !== k) return false;
  const s = bytesToBigInt(signature);
  if (s >= key.n) return false;
  const modBits = bitLength(key.n);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = hashLength(hash);
  const m = rsaPublic(key, s);
  if (bitLength(m) > emBits) return false;
  const em = bigIntToBytes(m, emLen);
  if (em[emLen - 1] !== 0xbc || emLen < hLen + 2) return false;
  const db = em.slice(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  if (db[0] & ~(0xff >>> (8 * emLen - emBits)) & 0xff) return false;
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i] ^= mask[i];
  db[0] &= 0xff >>> (8 * emLen - emBits);
  let one = 0;
  while (one < db.length && db[one] === 0) one++;
  if (one === db.length || db[one] !== 1) return false;
  const sLen = db.length - one - 1;
  const wanted = saltLength === PSS_SALT_DIGEST ? hLen : saltLength === PSS_SALT_MAX ? sLen : saltLength;
  if (wanted !== sLen) return false;
  const expected = digest(hash, new Uint8Array(8), hashed, db.subarray(one + 1));
  let diff = 0;
  for (let i = 0; i < hLen; i++) diff |= expected[i] ^ h[i];
  return diff === 0;
}

// --- encryption -----------------------------------------------------------------------------------

export function encryptOaep(key: RsaKey, hash: string, label: Uint8Array, message: Uint8Array): Uint8Array {
  const k = modulusBytes(key);
  const hLen = hashLength(hash);
  if (message.length > k - 2 * hLen - 2) throw cryptoError('data too large for key size', 'ERR_OSSL_RSA_DATA_TOO_LARGE_FOR_KEY_SIZE');
  const db = new Uint8Array(k - hLen - 1);
  db.set(digest(hash, label));
  db[db.length - message.length - 1] = 1;
  db.set(message, db.length - message.length);
  const seed = randomBytes(hLen);
  const dbMask = mgf1(hash, seed, db.length);
  for (let i = 0; i < db.length; i++) db[i] ^= dbMask[i];
  const seedMask = mgf1(hash, db, hLen);
  for (let i = 0; i < hLen; i++) seed[i] ^= seedMask[i];
  const em = new Uint8Array(k);
  em.set(seed, 1);
  em.set(db, 1 + hLen);
  return bigIntToBytes(rsaPublic(key, bytesToBigInt(em)), k);
}

export function decryptOaep(key: RsaKey, hash: string, label: Uint8Array, cipher: Uint8Array): Uint8Array {
  const k = modulusBytes(key);
  const hLen = hashLength(hash);
  const fail = () => cryptoError('error:02000079:rsa routines::oaep decoding error', 'ERR_OSSL_RSA_OAEP_DECODING_ERROR');
  if (cipher.length !== k || k < 2 * hLen + 2) throw fail();
  const em = bigIntToBytes(rsaPrivate(key, bytesToBigInt(cipher)), k);
  const seed = em.slice(1, 1 + hLen);
  const db = em.slice(1 + hLen);
  const seedMask = mgf1(hash, db, hLen);
  for (let i = 0; i < hLen; i++) seed[i] ^= seedMask[i];
  const dbMask = mgf1(hash, seed, db.length);
  for (let i = 0; i < db.length; i++) db[i] ^= dbMask[i];
  const lHash = digest(hash, label);
  // one pass over the whole block whatever it holds: the outcome shows only at the end
  let bad = em[0];
  for (let i = 0; i < hLen; i++) bad |= db[i] ^ lHash[i];
  let found = 0;
  let index = 0;
  for (let i = hLen; i < db.length; i++) {
    const isOne = db[i] === 1 ? 1 : 0;
    const isZero = db[i] === 0 ? 1 : 0;
    const first = isOne & (found ^ 1);
    index = first ? i : index;
    found |= isOne;
    bad |= (found ^ 1) & (isZero ^ 1) & (isOne ^ 1);
  }
  if (bad | (found ^ 1)) throw fail();
  return db.slice(index + 1);
}

/** EME-PKCS1-v1_5 (block type 2, random non-zero padding) or EMSA type 1 (0xff padding, for
 *  privateEncrypt). */
export function padPkcs1(k: number, message: Uint8Array, type: 1 | 2): Uint8Array {
  if (message.length > k - 11) throw cryptoError('data too large for key size', 'ERR_OSSL_RSA_DATA_TOO_LARGE_FOR_KEY_SIZE');
  const em = new Uint8Array(k);
  em[1] = type;
  const padLength = k - message.length - 3;
  if (type === 1) em.fill(0xff, 2, 2 + padLength);
  else {
    const pad = em.subarray(2, 2 + padLength);
    for (let i = 0; i < pad.length; i++) {
      let byte = 0;
      while (byte === 0) byte = randomBytes(1)[0];
      pad[i] = byte;
    }
  }
  em.set(message, k - message.length);
  return em;
}

export function unpadPkcs1(em: Uint8Array, type: 1 | 2): Uint8Array {
  let bad = em[0] | (em[1] ^ type);
  let found = 0;
  let index = 0;
  for (let i = 2; i < em.length; i++) {
    const isZero = em[i] === 0 ? 1 : 0;
    const first = isZero & (found ^ 1);
    index = first ? i : index;
    found |= isZero;
    if (type === 1) bad |= (found ^ 1) & (em[i] === 0xff || isZero ? 0 : 1);
  }
  bad |= found ^ 1;
  bad |= index < 10 ? 1 : 0;
  if (bad) throw cryptoError(type === 2 ? 'error:02000072:rsa routines::padding check failed' : 'error:0200008A:rsa routines::invalid padding', 'ERR_OSSL_RSA_PADDING_CHECK_FAILED');
  return em.slice(index + 1);
}
