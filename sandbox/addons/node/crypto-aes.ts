// AES (FIPS 197) with the CBC, CTR and GCM modes node:crypto's createCipheriv offers for it, in
// JavaScript inside the isolate (the worker's CPU, counted by its CPU limit). Tables are computed
// at load from the field arithmetic, not typed in; the tests compare every mode with Node's
// OpenSSL. GHASH multiplies bit by bit (no key-dependent tables).


const SBOX = new Uint8Array(256);
const INV_SBOX = new Uint8Array(256);
const TE = [new Int32Array(256), new Int32Array(256), new Int32Array(256), new Int32Array(256)];
const TD = [new Int32Array(256), new Int32Array(256), new Int32Array(256), new Int32Array(256)];

const xtime = (b: number) => ((b << 1) ^ (b & 0x80 ? 0x11b : 0)) & 0xff;
function mul(a: number, b: number): number {
  let out = 0;
  for (; b; b >>= 1, a = xtime(a)) if (b & 1) out ^= a;
  return out;
}

// Built on the first AES key (a worker that never uses AES does not pay for them): the S-box from
// the multiplicative inverse in GF(2^8) (through exp/log tables of the generator 3) and the affine
// map, then the round tables.
let tablesBuilt = false;
function buildTables(): void {
  if (tablesBuilt) return;
  tablesBuilt = true;
  const exp = new Uint8Array(256);
  const log = new Uint8Array(256);
  for (let i = 0, x = 1; i < 255; i++) {
    exp[i] = x;
    log[x] = i;
    x ^= xtime(x); // x * 3
  }
  for (let x = 0; x < 256; x++) {
    const inverse = x === 0 ? 0 : exp[(255 - log[x]) % 255];
    let s = inverse;
    for (let i = 1; i < 5; i++) s ^= ((inverse << i) | (inverse >> (8 - i))) & 0xff;
    s ^= 0x63;
    SBOX[x] = s;
    INV_SBOX[s] = x;
  }
  const rotr8 = (v: number) => (v >>> 8) | (v << 24);
  for (let x = 0; x < 256; x++) {
    const s = SBOX[x];
    let e = (mul(s, 2) << 24) | (s << 16) | (s << 8) | mul(s, 3);
    const i = INV_SBOX[x];
    let d = (mul(i, 14) << 24) | (mul(i, 9) << 16) | (mul(i, 13) << 8) | mul(i, 11);
    for (let t = 0; t < 4; t++) {
      TE[t][x] = e;
      TD[t][x] = d;
      e = rotr8(e);
      d = rotr8(d);
    }
  }
}

export class Aes {
  private readonly encKeys: Int32Array;
  private decKeys: Int32Array | null = null;
  private readonly rounds: number;

  constructor(key: Uint8Array) {
    buildTables();
    const nk = key.length / 4;
    if (nk !== 4 && nk !== 6 && nk !== 8) throw new RangeError('Invalid key length');
    this.rounds = nk + 6;
    const total = 4 * (this.rounds + 1);
    const w = new Int32Array(total);
    for (let i = 0; i < nk; i++) w[i] = (key[4 * i] << 24) | (key[4 * i + 1] << 16) | (key[4 * i + 2] << 8) | key[4 * i + 3];
    let rcon = 1;
    for (let i = nk; i < total; i++) {
      let t = w[i - 1];
      if (i % nk === 0) {
        t = ((SBOX[(t >>> 16) & 255] << 24) | (SBOX[(t >>> 8) & 255] << 16) | (SBOX[t & 255] << 8) | SBOX[t >>> 24]) ^ (rcon << 24);
        rcon = xtime(rcon);
      } else if (nk > 6 && i % nk === 4) {
        t = (SBOX[t >>> 24] << 24) | (SBOX[(t >>> 16) & 255] << 16) | (SBOX[(t >>> 8) & 255] << 8) | SBOX[t & 255];
      }
      w[i] = w[i - nk] ^ t;
    }
    this.encKeys = w;
  }

  private decryptionKeys(): Int32Array {
    if (this.decKeys) return this.decKeys;
    // The equivalent inverse cipher's schedule: round keys in reverse, InvMixColumns applied to
    // all but the first and last.
    const enc = this.encKeys;
    const rounds = this.rounds;
    const dk = new Int32Array(enc.length);
    for (let r = 0; r <= rounds; r++) {
      for (let c = 0; c < 4; c++) {
        const v = enc[4 * (rounds - r) + c];
        dk[4 * r + c] = r === 0 || r === rounds ? v : TD[0][SBOX[v >>> 24]] ^ TD[1][SBOX[(v >>> 16) & 255]] ^ TD[2][SBOX[(v >>> 8) & 255]] ^ TD[3][SBOX[v & 255]];
      }
    }
    this.decKeys = dk;
    return dk;
  }

  /** Encrypt 16 bytes of `input` at `i` into `output` at `o`. */
  encryptBlock(input: Uint8Array, i: number, output: Uint8Array, o: number): void {
    const k = this.encKeys;
    const [T0, T1, T2, T3] = TE;
    let s0 = ((input[i] << 24) | (input[i + 1] << 16) | (input[i + 2] << 8) | input[i + 3]) ^ k[0];
    let s1 = ((input[i + 4] << 24) | (input[i + 5] << 16) | (input[i + 6] << 8) | input[i + 7]) ^ k[1];
    let s2 = ((input[i + 8] << 24) | (input[i + 9] << 16) | (input[i + 10] << 8) | input[i + 11]) ^ k[2];
    let s3 = ((input[i + 12] << 24) | (input[i + 13] << 16) | (input[i + 14] << 8) | input[i + 15]) ^ k[3];
    let r = 4;
    for (let round = 1; round < this.rounds; round++, r += 4) {
      const t0 = T0[s0 >>> 24] ^ T1[(s1 >>> 16) & 255] ^ T2[(s2 >>> 8) & 255] ^ T3[s3 & 255] ^ k[r];
      const t1 = T0[s1 >>> 24] ^ T1[(s2 >>> 16) & 255] ^ T2[(s3 >>> 8) & 255] ^ T3[s0 & 255] ^ k[r + 1];
      const t2 = T0[s2 >>> 24] ^ T1[(s3 >>> 16) & 255] ^ T2[(s0 >>> 8) & 255] ^ T3[s1 & 255] ^ k[r + 2];
      const t3 = T0[s3 >>> 24] ^ T1[(s0 >>> 16) & 255] ^ T2[(s1 >>> 8) & 255] ^ T3[s2 & 255] ^ k[r + 3];
      s0 = t0; s1 = t1; s2 = t2; s3 = t3;
    }
    const S = SBOX;
    const last = (a: number, b: number, c: number, d: number, key: number) =>
      ((S[a >>> 24] << 24) | (S[(b >>> 16) & 255] << 16) | (S[(c >>> 8) & 255] << 8) | S[d & 255]) ^ key;
    writeWord(output, o, last(s0, s1, s2, s3, k[r]));
    writeWord(output, o + 4, last(s1, s2, s3, s0, k[r + 1]));
    writeWord(output, o + 8, last(s2, s3, s0, s1, k[r + 2]));
    writeWord(output, o + 12, last(s3, s0, s1, s2, k[r + 3]));
  }

  decryptBlock(input: Uint8Array, i: number, output: Uint8Array, o: number): void {
    const k = this.decryptionKeys();
    const [T0, T1, T2, T3] = TD;
    let s0 = ((input[i] << 24) | (input[i + 1] << 16) | (input[i + 2] << 8) | input[i + 3]) ^ k[0];
    let s1 = ((input[i + 4] << 24) | (input[i + 5] << 16) | (input[i + 6] << 8) | input[i + 7]) ^ k[1];
    let s2 = ((input[i + 8] << 24) | (input[i + 9] << 16) | (input[i + 10] << 8) | input[i + 11]) ^ k[2];
    let s3 = ((input[i + 12] << 24) | (input[i + 13] << 16) | (input[i + 14] << 8) | input[i + 15]) ^ k[3];
    let r = 4;
    for (let round = 1; round < this.rounds; round++, r += 4) {
      const t0 = T0[s0 >>> 24] ^ T1[(s3 >>> 16) & 255] ^ T2[(s2 >>> 8) & 255] ^ T3[s1 & 255] ^ k[r];
      const t1 = T0[s1 >>> 24] ^ T1[(s0 >>> 16) & 255] ^ T2[(s3 >>> 8) & 255] ^ T3[s2 & 255] ^ k[r + 1];
      const t2 = T0[s2 >>> 24] ^ T1[(s1 >>> 16) & 255] ^ T2[(s0 >>> 8) & 255] ^ T3[s3 & 255] ^ k[r + 2];
      const t3 = T0[s3 >>> 24] ^ T1[(s2 >>> 16) & 255] ^ T2[(s1 >>> 8) & 255] ^ T3[s0 & 255] ^ k[r + 3];
      s0 = t0; s1 = t1; s2 = t2; s3 = t3;
    }
    const S = INV_SBOX;
    const last = (a: number, b: number, c: number, d: number, key: number) =>
      ((S[a >>> 24] << 24) | (S[(b >>> 16) & 255] << 16) | (S[(c >>> 8) & 255] << 8) | S[d & 255]) ^ key;
    writeWord(output, o, last(s0, s3, s2, s1, k[r]));
    writeWord(output, o + 4, last(s1, s0, s3, s2, k[r + 1]));
    writeWord(output, o + 8, last(s2, s1, s0, s3, k[r + 2]));
    writeWord(output, o + 12, last(s3, s2, s1, s0, k[r + 3]));
  }
}

function writeWord(out: Uint8Array, o: number, v: number): void {
  out[o] = v >>> 24;
  out[o + 1] = v >>> 16;
  out[o + 2] = v >>> 8;
  out[o + 3] = v;
}

/** GHASH (NIST SP 800-38D 6.4) over 16-byte blocks, with the hash subkey H. */
export class Ghash {
  private readonly h: Int32Array;
  private readonly y = new Int32Array(4);

  constructor(hashKey: Uint8Array) {
    this.h = new Int32Array(4);
    for (let i = 0; i < 4; i++) this.h[i] = (hashKey[4 * i] << 24) | (hashKey[4 * i + 1] << 16) | (hashKey[4 * i + 2] << 8) | hashKey[4 * i + 3];
  }

  /** Absorb `data`, zero-padded to whole blocks. */
  update(data: Uint8Array): void {
    for (let o = 0; o < data.length; o += 16) {
      const block = new Uint8Array(16);
      block.set(data.subarray(o, Math.min(o + 16, data.length)));
      for (let i = 0; i < 4; i++) this.y[i] ^= (block[4 * i] << 24) | (block[4 * i + 1] << 16) | (block[4 * i + 2] << 8) | block[4 * i + 3];
      this.multiply();
    }
  }

  private multiply(): void {
    let z0 = 0, z1 = 0, z2 = 0, z3 = 0;
    let v0 = this.h[0], v1 = this.h[1], v2 = this.h[2], v3 = this.h[3];
    const y = this.y;
    for (let i = 0; i < 128; i++) {
      if ((y[i >>> 5] >>> (31 - (i & 31))) & 1) {
        z0 ^= v0; z1 ^= v1; z2 ^= v2; z3 ^= v3;
      }
      const lsb = v3 & 1;
      v3 = (v3 >>> 1) | (v2 << 31);
      v2 = (v2 >>> 1) | (v1 << 31);
      v1 = (v1 >>> 1) | (v0 << 31);
      v0 = v0 >>> 1;
      if (lsb) v0 ^= 0xe1000000;
    }
    y[0] = z0; y[1] = z1; y[2] = z2; y[3] = z3;
  }

  digest(): Uint8Array {
    const out = new Uint8Array(16);
    for (let i = 0; i < 4; i++) writeWord(out, 4 * i, this.y[i]);
    return out;
  }
}

/** Big-endian increment of the last `bytes` bytes of a counter block (CTR: 16, GCM: 4). */
export function incrementCounter(counter: Uint8Array, bytes: number): void {
  for (let i = 15; i >= 16 - bytes; i--) {
    counter[i] = (counter[i] + 1) & 255;
    if (counter[i] !== 0) break;
  }
}
