// MD5, SHA-1, SHA-224/256 and SHA-384/512 in JavaScript, for node:crypto's synchronous
// createHash/createHmac/pbkdf2Sync. They run inside the isolate, so their CPU is the worker's own
// and counted by its CPU limit, with no host crossing per update. Round constants are derived at
// load (roots of primes, with BigInt), not typed in; the tests compare every digest with Node's.

export interface HashCore {
  readonly blockSize: number;
  readonly outputSize: number;
  update(bytes: Uint8Array): void;
  digest(): Uint8Array;
  clone(): HashCore;
}

const PRIMES: number[] = [];
for (let n = 2; PRIMES.length < 80; n++) if (PRIMES.every((p) => n % p !== 0)) PRIMES.push(n);

/** floor(x^(1/k)) for a BigInt x. */
function iroot(x: bigint, k: bigint): bigint {
  // Newton's method from above (the float estimate, raised past its error) falls monotonically
  // to the floor of the root in a few steps.
  let r = BigInt(Math.ceil(Math.pow(Number(x), 1 / Number(k)) * 1.000001)) + 2n;
  for (;;) {
    const next = ((k - 1n) * r + x / r ** (k - 1n)) / k;
    if (next >= r) break;
    r = next;
  }
  while (r ** k > x) r -= 1n;
  while ((r + 1n) ** k <= x) r += 1n;
  return r;
}

/** The first `bits` bits of the fractional part of p^(1/k). */
function fractionBits(p: number, k: number, bits: number): bigint {
  const root = iroot(BigInt(p) << BigInt(k * bits), BigInt(k));
  return root & ((1n << BigInt(bits)) - 1n);
}

// Derived on first use: a worker that never hashes does not pay for them.
let K256: Int32Array;
let K512: Int32Array;
let IV256: Int32Array;
let IV512: Int32Array;
let IV384: Int32Array;
let IV224: Int32Array;
let MD5_K: Int32Array;
let derived = false;

function sqrtWords(from: number, bits: number): Int32Array {
  const out = new Int32Array(bits === 32 ? 8 : 16);
  for (let i = 0; i < 8; i++) {
    const v = fractionBits(PRIMES[from + i], 2, bits);
    if (bits === 32) out[i] = Number(v);
    else {
      out[2 * i] = Number(v >> 32n);
      out[2 * i + 1] = Number(v & 0xffffffffn);
    }
  }
  return out;
}

function derive(): void {
  if (derived) return;
  derived = true;
  K256 = new Int32Array(64);
  for (let i = 0; i < 64; i++) K256[i] = Number(fractionBits(PRIMES[i], 3, 32));
  K512 = new Int32Array(160);
  for (let i = 0; i < 80; i++) {
    const k = fractionBits(PRIMES[i], 3, 64);
    K512[2 * i] = Number(k >> 32n);
    K512[2 * i + 1] = Number(k & 0xffffffffn);
  }
  IV256 = sqrtWords(0, 32);
  IV512 = sqrtWords(0, 64);
  IV384 = sqrtWords(8, 64);
  // SHA-224: the low halves of SHA-384's initial words (FIPS 180-4 5.3.2)
  IV224 = new Int32Array(8);
  for (let i = 0; i < 8; i++) IV224[i] = IV384[2 * i + 1];
  MD5_K = new Int32Array(64);
  for (let i = 0; i < 64; i++) MD5_K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0;
}
const MD5_S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];

/** Buffering and padding shared by all of them (Merkle-Damgard, 64 or 128-byte blocks). */
abstract class BlockHash implements HashCore {
  protected readonly block: Uint8Array;
  protected filled = 0;
  protected bytes = 0;

  constructor(
    readonly blockSize: number,
    readonly outputSize: number,
    private readonly littleEndian = false,
  ) {
    this.block = new Uint8Array(blockSize);
  }

  protected abstract compress(data: Uint8Array, offset: number): void;
  protected abstract state(): Uint8Array;
  abstract clone(): HashCore;

  protected copyInto<T extends BlockHash>(target: T): T {
    target.block.set(this.block);
    target.filled = this.filled;
    target.bytes = this.bytes;
    return target;
  }

  update(data: Uint8Array): void {
    let offset = 0;
    this.bytes += data.length;
    if (this.filled > 0) {
      const take = Math.min(this.blockSize - this.filled, data.length);
      this.block.set(data.subarray(0, take), this.filled);
      this.filled += take;
      offset = take;
      if (this.filled < this.blockSize) return;
      this.compress(this.block, 0);
      this.filled = 0;
    }
    for (; offset + this.blockSize <= data.length; offset += this.blockSize) this.compress(data, offset);
    if (offset < data.length) {
      this.block.set(data.subarray(offset), 0);
      this.filled = data.length - offset;
    }
  }

  digest(): Uint8Array {
    const lengthBytes = this.blockSize === 128 ? 16 : 8;
    const bits = this.bytes * 8;
    const block = this.block;
    block[this.filled++] = 0x80;
    if (this.filled > this.blockSize - lengthBytes) {
      block.fill(0, this.filled);
      this.compress(block, 0);
      this.filled = 0;
    }
    block.fill(0, this.filled);
    // The message length in bits (up to 2^53 here), in the last bytes of the block.
    const high = Math.floor(bits / 4294967296);
    const low = bits >>> 0;
    if (this.littleEndian) {
      for (let i = 0; i < 4; i++) block[56 + i] = (low >>> (8 * i)) & 255;
      for (let i = 0; i < 4; i++) block[60 + i] = (high >>> (8 * i)) & 255;
    } else {
      const end = this.blockSize;
      for (let i = 0; i < 4; i++) block[end - 1 - i] = (low >>> (8 * i)) & 255;
      for (let i = 0; i < 4; i++) block[end - 5 - i] = (high >>> (8 * i)) & 255;
    }
    this.compress(block, 0);
    return this.state().slice(0, this.outputSize);
  }
}

function wordsBigEndian(words: Int32Array): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  for (let i = 0; i < words.length; i++) {
    out[4 * i] = words[i] >>> 24;
    out[4 * i + 1] = words[i] >>> 16;
    out[4 * i + 2] = words[i] >>> 8;
    out[4 * i + 3] = words[i];
  }
  return out;
}

class Md5 extends BlockHash {
  private readonly h = new Int32Array([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476]);
  private readonly x = new Int32Array(16);
  constructor() {
    super(64, 16, true);
  }
  clone(): HashCore {
    const copy = this.copyInto(new Md5());
    copy.h.set(this.h);
    return copy;
  }
  protected state(): Uint8Array {
    const out = new Uint8Array(16);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) out[4 * i + j] = this.h[i] >>> (8 * j);
    return out;
  }
  protected compress(d: Uint8Array, o: number): void {
    const x = this.x;
    for (let i = 0; i < 16; i++, o += 4) x[i] = d[o] | (d[o + 1] << 8) | (d[o + 2] << 16) | (d[o + 3] << 24);
    let a = this.h[0], b = this.h[1], c = this.h[2], dd = this.h[3];
    for (let i = 0; i < 64; i++) {
      let f: number, g: number;
      const round = i >> 4;
      if (round === 0) { f = (b & c) | (~b & dd); g = i; }
      else if (round === 1) { f = (dd & b) | (~dd & c); g = (5 * i + 1) & 15; }
      else if (round === 2) { f = b ^ c ^ dd; g = (3 * i + 5) & 15; }
      else { f = c ^ (b | ~dd); g = (7 * i) & 15; }
      const s = MD5_S[(round << 2) | (i & 3)];
      const sum = (a + f + MD5_K[i] + x[g]) | 0;
      a = dd;
      dd = c;
      c = b;
      b = (b + ((sum << s) | (sum >>> (32 - s)))) | 0;
    }
    this.h[0] = (this.h[0] + a) | 0;
    this.h[1] = (this.h[1] + b) | 0;
    this.h[2] = (this.h[2] + c) | 0;
    this.h[3] = (this.h[3] + dd) | 0;
  }
}

class Sha1 extends BlockHash {
  private readonly h = new Int32Array([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0]);
  private readonly w = new Int32Array(80);
  constructor() {
    super(64, 20);
  }
  clone(): HashCore {
    const copy = this.copyInto(new Sha1());
    copy.h.set(this.h);
    return copy;
  }
  protected state(): Uint8Array {
    return wordsBigEndian(this.h);
  }
  protected compress(d: Uint8Array, o: number): void {
    const w = this.w;
    for (let i = 0; i < 16; i++, o += 4) w[i] = (d[o] << 24) | (d[o + 1] << 16) | (d[o + 2] << 8) | d[o + 3];
    for (let i = 16; i < 80; i++) {
      const v = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
      w[i] = (v << 1) | (v >>> 31);
    }
    let a = this.h[0], b = this.h[1], c = this.h[2], dd = this.h[3], e = this.h[4];
    for (let i = 0; i < 80; i++) {
      let f: number, k: number;
      if (i < 20) { f = (b & c) | (~b & dd); k = 0x5a827999; }
      else if (i < 40) { f = b ^ c ^ dd; k = 0x6ed9eba1; }
      else if (i < 60) { f = (b & c) | (b & dd) | (c & dd); k = 0x8f1bbcdc | 0; }
      else { f = b ^ c ^ dd; k = 0xca62c1d6 | 0; }
      const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]) | 0;
      e = dd;
      dd = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    this.h[0] = (this.h[0] + a) | 0;
    this.h[1] = (this.h[1] + b) | 0;
    this.h[2] = (this.h[2] + c) | 0;
    this.h[3] = (this.h[3] + dd) | 0;
    this.h[4] = (this.h[4] + e) | 0;
  }
}

class Sha256 extends BlockHash {
  private readonly h: Int32Array;
  private readonly w = new Int32Array(64);
  constructor(private readonly is224 = false) {
    super(64, is224 ? 28 : 32);
    this.h = new Int32Array(is224 ? IV224 : IV256);
  }
  clone(): HashCore {
    const copy = this.copyInto(new Sha256(this.is224));
    copy.h.set(this.h);
    return copy;
  }
  protected state(): Uint8Array {
    return wordsBigEndian(this.h);
  }
  protected compress(d: Uint8Array, o: number): void {
    const w = this.w;
    for (let i = 0; i < 16; i++, o += 4) w[i] = (d[o] << 24) | (d[o + 1] << 16) | (d[o + 2] << 8) | d[o + 3];
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15], y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    const h = this.h;
    let a = h[0], b = h[1], c = h[2], dd = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K256[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (dd + t1) | 0;
      dd = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + dd) | 0;
    h[4] = (h[4] + e) | 0;
    h[5] = (h[5] + f) | 0;
    h[6] = (h[6] + g) | 0;
    h[7] = (h[7] + hh) | 0;
  }
}

// SHA-512 on pairs of 32-bit words (high, low): BigInt would be tens of times slower.
class Sha512 extends BlockHash {
  private readonly h: Int32Array;
  private readonly w = new Int32Array(160);
  constructor(private readonly is384 = false) {
    super(128, is384 ? 48 : 64);
    this.h = new Int32Array(is384 ? IV384 : IV512);
  }
  clone(): HashCore {
    const copy = this.copyInto(new Sha512(this.is384));
    copy.h.set(this.h);
    return copy;
  }
  protected state(): Uint8Array {
    return wordsBigEndian(this.h);
  }
  protected compress(d: Uint8Array, o: number): void {
    const w = this.w;
    for (let i = 0; i < 32; i++, o += 4) w[i] = (d[o] << 24) | (d[o + 1] << 16) | (d[o + 2] << 8) | d[o + 3];
    for (let i = 16; i < 80; i++) {
      // sigma0(w[i-15]) = rotr1 ^ rotr8 ^ shr7
      let xh = w[2 * (i - 15)], xl = w[2 * (i - 15) + 1];
      const s0h = ((xh >>> 1) | (xl << 31)) ^ ((xh >>> 8) | (xl << 24)) ^ (xh >>> 7);
      const s0l = ((xl >>> 1) | (xh << 31)) ^ ((xl >>> 8) | (xh << 24)) ^ ((xl >>> 7) | (xh << 25));
      // sigma1(w[i-2]) = rotr19 ^ rotr61 ^ shr6
      xh = w[2 * (i - 2)];
      xl = w[2 * (i - 2) + 1];
      const s1h = ((xh >>> 19) | (xl << 13)) ^ ((xl >>> 29) | (xh << 3)) ^ (xh >>> 6);
      const s1l = ((xl >>> 19) | (xh << 13)) ^ ((xh >>> 29) | (xl << 3)) ^ ((xl >>> 6) | (xh << 26));
      const lo = (w[2 * (i - 16) + 1] >>> 0) + (s0l >>> 0) + (w[2 * (i - 7) + 1] >>> 0) + (s1l >>> 0);
      w[2 * i] = w[2 * (i - 16)] + s0h + w[2 * (i - 7)] + s1h + ((lo / 4294967296) | 0);
      w[2 * i + 1] = lo;
    }
    const h = this.h;
    let ah = h[0], al = h[1], bh = h[2], bl = h[3], ch = h[4], cl = h[5], dh = h[6], dl = h[7];
    let eh = h[8], el = h[9], fh = h[10], fl = h[11], gh = h[12], gl = h[13], hh = h[14], hl = h[15];
    for (let i = 0; i < 80; i++) {
      // Sigma1(e) = rotr14 ^ rotr18 ^ rotr41
      const S1h = ((eh >>> 14) | (el << 18)) ^ ((eh >>> 18) | (el << 14)) ^ ((el >>> 9) | (eh << 23));
      const S1l = ((el >>> 14) | (eh << 18)) ^ ((el >>> 18) | (eh << 14)) ^ ((eh >>> 9) | (el << 23));
      const chh = (eh & fh) ^ (~eh & gh);
      const chl = (el & fl) ^ (~el & gl);
      const t1lo = (hl >>> 0) + (S1l >>> 0) + (chl >>> 0) + (K512[2 * i + 1] >>> 0) + (w[2 * i + 1] >>> 0);
      const t1h = (hh + S1h + chh + K512[2 * i] + w[2 * i] + ((t1lo / 4294967296) | 0)) | 0;
      const t1l = t1lo | 0;
      // Sigma0(a) = rotr28 ^ rotr34 ^ rotr39
      const S0h = ((ah >>> 28) | (al << 4)) ^ ((al >>> 2) | (ah << 30)) ^ ((al >>> 7) | (ah << 25));
      const S0l = ((al >>> 28) | (ah << 4)) ^ ((ah >>> 2) | (al << 30)) ^ ((ah >>> 7) | (al << 25));
      const majh = (ah & bh) ^ (ah & ch) ^ (bh & ch);
      const majl = (al & bl) ^ (al & cl) ^ (bl & cl);
      const t2lo = (S0l >>> 0) + (majl >>> 0);
      const t2h = (S0h + majh + ((t2lo / 4294967296) | 0)) | 0;
      const t2l = t2lo | 0;
      hh = gh; hl = gl;
      gh = fh; gl = fl;
      fh = eh; fl = el;
      const elo = (dl >>> 0) + (t1l >>> 0);
      eh = (dh + t1h + ((elo / 4294967296) | 0)) | 0;
      el = elo | 0;
      dh = ch; dl = cl;
      ch = bh; cl = bl;
      bh = ah; bl = al;
      const alo = (t1l >>> 0) + (t2l >>> 0);
      ah = (t1h + t2h + ((alo / 4294967296) | 0)) | 0;
      al = alo | 0;
    }
    const add = (i: number, xh: number, xl: number) => {
      const lo = (h[i + 1] >>> 0) + (xl >>> 0);
      h[i] = (h[i] + xh + ((lo / 4294967296) | 0)) | 0;
      h[i + 1] = lo | 0;
    };
    add(0, ah, al); add(2, bh, bl); add(4, ch, cl); add(6, dh, dl);
    add(8, eh, el); add(10, fh, fl); add(12, gh, gl); add(14, hh, hl);
  }
}

const FACTORIES: Record<string, () => HashCore> = {
  md5: () => new Md5(),
  sha1: () => new Sha1(),
  sha224: () => new Sha256(true),
  sha256: () => new Sha256(),
  sha384: () => new Sha512(true),
  sha512: () => new Sha512(),
};
const ALIASES: Record<string, string> = {
  'sha-1': 'sha1', 'sha-224': 'sha224', 'sha-256': 'sha256', 'sha-384': 'sha384', 'sha-512': 'sha512',
  rsa_md5: 'md5', 'rsa-md5': 'md5', 'rsa-sha1': 'sha1', 'rsa-sha224': 'sha224', 'rsa-sha256': 'sha256', 'rsa-sha384': 'sha384', 'rsa-sha512': 'sha512',
  'dsa-sha': 'sha1', 'dsa-sha1': 'sha1', 'ecdsa-with-sha1': 'sha1',
};

/** The canonical name of a digest algorithm, or undefined when it is not one of ours. */
export function hashName(algorithm: string): string | undefined {
  const lower = String(algorithm).toLowerCase();
  const name = ALIASES[lower] ?? lower;
  return name in FACTORIES ? name : undefined;
}

export function newHash(name: string): HashCore {
  derive();
  return FACTORIES[name]();
}

/** What getHashes() answers: workerd's list in workerd's order, less md4 and md5-sha1 (not here). */
export const HASH_NAMES = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'RSA-MD5', 'RSA-SHA1', 'RSA-SHA224', 'RSA-SHA256', 'RSA-SHA384', 'RSA-SHA512', 'DSA-SHA', 'DSA-SHA1', 'ecdsa-with-SHA1'];
