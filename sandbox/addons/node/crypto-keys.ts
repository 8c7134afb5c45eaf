// node:crypto's asymmetric half, inside the isolate: KeyObject (secret, RSA, EC on P-256/384/521,
// Ed25519, X25519) with PEM/DER/JWK import and export, generateKeyPair, sign/verify and
// Sign/Verify, publicEncrypt/privateDecrypt (OAEP, PKCS#1 v1.5), ECDH, diffieHellman, scrypt.
// Curves and scrypt are @noble/curves and @noble/hashes; RSA is crypto-rsa.ts; key files are
// crypto-asn1.ts. All of it runs on the worker's CPU, under its CPU limit. Evaluated only when a
// worker reads one of these names from node:crypto (nodejs-compat.ts's lazy namespace).
import { ecdsa, weierstrass, type ECDSA } from '@noble/curves/abstract/weierstrass.js';
import { sha224, sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import type * as Edwards from './crypto-curve25519.js';
import { scrypt as nobleScrypt } from '@noble/hashes/scrypt.js';
import { Buffer } from './buffer.js';
import { crypto as webCrypto } from './web.js';
import { hashName, newHash } from './crypto-hash.js';
import * as asn1 from './crypto-asn1.js';
import * as rsa from './crypto-rsa.js';
import { cryptoError } from './crypto-rsa.js';
import { setSecretKeyReader } from './crypto-key-bridge.js';
import { argTypeError, codedError, later, output, toBytes, type BufferLike, type Callback, type Input } from './crypto-util.js';

declare const require: (path: string) => unknown;

// Ed25519/X25519 evaluated on first use, like the NIST curves: importing node:crypto stays cheap.
let edwards: typeof Edwards | null = null;
const curve25519 = () => (edwards ??= require('./crypto-curve25519.js') as typeof Edwards);

const coded = codedError;
const argType = argTypeError;
const argValue = (name: string, value: unknown, reason = 'is invalid') =>
  coded(new TypeError(`The ${name.includes('.') ? 'property' : 'argument'} '${name}' ${reason}. Received ${typeof value === 'string' ? `'${value}'` : String(value)}`), 'ERR_INVALID_ARG_VALUE');
const unavailable = (what: string) => coded(new Error(`${what} is not supported by node:crypto in Cinder (see docs/compat.md)`), 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM');

const b64 = (s: string) => Buffer.from(s, 'base64') as Uint8Array;
const toB64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
const b64url = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
const fromB64url = (value: unknown, name: string): Uint8Array => {
  if (typeof value !== 'string') throw coded(new TypeError(`The "key.${name}" property must be of type string`), 'ERR_INVALID_ARG_TYPE');
  return Buffer.from(value, 'base64url') as Uint8Array;
};

function digestName(algorithm: unknown, what = 'Digest'): string {
  if (typeof algorithm !== 'string') throw argType('algorithm', 'of type string');
  const lower = algorithm.toLowerCase().replace(/^(rsa-|ecdsa-with-)/, '').replace(/withrsaencryption$/, '');
  const name = hashName(lower);
  if (!name) throw coded(new Error(`Invalid digest: ${algorithm}`), what === 'Digest' ? 'ERR_CRYPTO_INVALID_DIGEST' : 'ERR_OSSL_EVP_INVALID_DIGEST');
  return name;
}

function digest(name: string, data: Uint8Array): Uint8Array {
  const h = newHash(name);
  h.update(data);
  return h.digest();
}

// --- curves ---------------------------------------------------------------------------------------

interface Curve {
  name: string;
  /** its JWK "crv"; null where JWK has none (Node refuses to export those as JWK) */
  jwk: string | null;
  oid: string;
  /** the curve's arithmetic, made on first use (importing node:crypto must stay cheap) */
  readonly impl: ECDSA;
  bytes: number;
}

/** A NIST prime curve (a = -3, h = 1) from its standard parameters (FIPS 186-4 D.1.2, SEC 2). */
function nistCurve(name: string, jwk: string | null, oid: string, bytes: number, hash: Parameters<typeof ecdsa>[1], p: bigint, hex: { n: string; b: string; Gx: string; Gy: string }): Curve {
  let impl: ECDSA | null = null;
  return {
    name, jwk, oid, bytes,
    get impl() {
      return (impl ??= ecdsa(weierstrass({ p, n: BigInt(hex.n), h: 1n, a: p - 3n, b: BigInt(hex.b), Gx: BigInt(hex.Gx), Gy: BigInt(hex.Gy) }), hash));
    },
  };
}

const CURVES: Curve[] = [
  nistCurve('secp224r1', null, '1.3.132.0.33', 28, sha224, 2n ** 224n - 2n ** 96n + 1n, {
    n: '0xffffffffffffffffffffffffffff16a2e0b8f03e13dd29455c5c2a3d',
    b: '0xb4050a850c04b3abf54132565044b0b7d7bfd8ba270b39432355ffb4',
    Gx: '0xb70e0cbd6bb4bf7f321390b94a03c1d356c21122343280d6115c1d21',
    Gy: '0xbd376388b5f723fb4c22dfe6cd4375a05a07476444d5819985007e34',
  }),
  nistCurve('prime256v1', 'P-256', '1.2.840.10045.3.1.7', 32, sha256, 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n, {
    n: '0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551',
    b: '0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b',
    Gx: '0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296',
    Gy: '0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5',
  }),
  nistCurve('secp384r1', 'P-384', '1.3.132.0.34', 48, sha384, 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n, {
    n: '0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973',
    b: '0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef',
    Gx: '0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7',
    Gy: '0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f',
  }),
  nistCurve('secp521r1', 'P-521', '1.3.132.0.35', 66, sha512, 2n ** 521n - 1n, {
    n: '0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409',
    b: '0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00',
    Gx: '0x00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66',
    Gy: '0x011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650',
  }),
];
const CURVE_ALIASES: Record<string, string> = { 'p-224': 'secp224r1', 'p-256': 'prime256v1', secp256r1: 'prime256v1', 'p-384': 'secp384r1', 'p-521': 'secp521r1' };

function curveNamed(name: unknown): Curve | undefined {
  if (typeof name !== 'string') return undefined;
  const lower = name.toLowerCase();
  const canonical = CURVE_ALIASES[lower] ?? lower;
  return CURVES.find((c) => c.name === canonical);
}

/** The curves createECDH and generateKeyPair('ec') take, as workerd lists them. */
export function getCurves(): string[] {
  return CURVES.map((c) => c.name);
}

/** An uncompressed point from any SEC1 encoding, checked to be on the curve. */
function curvePoint(curve: Curve, bytes: Uint8Array): Uint8Array {
  try {
    return curve.impl.Point.fromBytes(bytes).toBytes(false);
  } catch {
    throw coded(new Error('Public key is not valid for specified curve'), 'ERR_CRYPTO_ECDH_INVALID_PUBLIC_KEY');
  }
}

function curveScalar(curve: Curve, bytes: Uint8Array): Uint8Array {
  const padded = bytes.length === curve.bytes ? bytes : asn1.bigIntToBytes(asn1.bytesToBigInt(bytes), curve.bytes);
  if (!curve.impl.utils.isValidSecretKey(padded)) throw coded(new Error('Private key is not valid for specified curve.'), 'ERR_CRYPTO_INVALID_KEYTYPE');
  return padded;
}

// --- key material ---------------------------------------------------------------------------------

const OID = {
  rsa: '1.2.840.113549.1.1.1',
  ec: '1.2.840.10045.2.1',
  ed25519: '1.3.101.112',
  x25519: '1.3.101.110',
} as const;

type Asymmetric =
  | { kind: 'rsa'; rsa: rsa.RsaKey }
  | { kind: 'ec'; curve: Curve; pub: Uint8Array; priv?: Uint8Array }
  | { kind: 'ed25519' | 'x25519'; pub: Uint8Array; priv?: Uint8Array };
type Material = { kind: 'secret'; bytes: Uint8Array } | Asymmetric;

const isPrivate = (m: Asymmetric) => (m.kind === 'rsa' ? m.rsa.d !== undefined : m.priv !== undefined);

function publicOf(m: Asymmetric): Asymmetric {
  if (m.kind === 'rsa') return { kind: 'rsa', rsa: { n: m.rsa.n, e: m.rsa.e } };
  return { ...m, priv: undefined };
}

function okp(kind: 'ed25519' | 'x25519', priv: Uint8Array): Asymmetric {
  if (priv.length !== 32) throw new asn1.Asn1Error(`${kind} private key must be 32 bytes`);
  return { kind, priv: priv.slice(), pub: (kind === 'ed25519' ? curve25519().ed25519 : curve25519().x25519).getPublicKey(priv) };
}

function ecPrivate(curve: Curve, d: Uint8Array): Asymmetric {
  const priv = curveScalar(curve, d);
  return { kind: 'ec', curve, priv, pub: curve.impl.getPublicKey(priv, false) };
}

// SubjectPublicKeyInfo
function readSpki(der: Uint8Array): Asymmetric {
  const [algorithm, key] = asn1.children(asn1.parse(der));
  const [oidNode, params] = asn1.children(asn1.expect(algorithm, asn1.TAG.SEQUENCE, 'an AlgorithmIdentifier'));
  const oid = asn1.readOid(oidNode);
  const bits = asn1.readBitString(key);
  if (oid === OID.rsa) return readPkcs1Public(bits);
  if (oid === OID.ec) {
    const curve = CURVES.find((c) => c.oid === asn1.readOid(params));
    if (!curve) throw unavailable(`The elliptic curve ${asn1.readOid(params)}`);
    return { kind: 'ec', curve, pub: curvePoint(curve, bits) };
  }
  if (oid === OID.ed25519 || oid === OID.x25519) {
    if (bits.length !== 32) throw new asn1.Asn1Error('bad public key length');
    return { kind: oid === OID.ed25519 ? 'ed25519' : 'x25519', pub: bits.slice() };
  }
  throw unavailable(`The key type with OID ${oid}`);
}

function readPkcs1Public(der: Uint8Array): Asymmetric {
  const [n, e] = asn1.children(asn1.parse(der));
  return { kind: 'rsa', rsa: { n: asn1.readInteger(n), e: asn1.readInteger(e) } };
}

function readPkcs1Private(der: Uint8Array): Asymmetric {
  const parts = asn1.children(asn1.parse(der));
  if (parts.length < 9) throw new asn1.Asn1Error('RSAPrivateKey is incomplete');
  const [n, e, d, p, q, dp, dq, qi] = parts.slice(1, 9).map(asn1.readInteger);
  return { kind: 'rsa', rsa: { n, e, d, p, q, dp, dq, qi } };
}

function readSec1(der: Uint8Array, known?: Curve): Asymmetric {
  const parts = asn1.children(asn1.parse(der));
  const d = asn1.expect(parts[1], asn1.TAG.OCTET_STRING, 'the private key OCTET STRING').value;
  let curve = known;
  for (const part of parts.slice(2)) {
    if (part.tag === 0xa0) {
      const oid = asn1.readOid(asn1.children(part, 0xa0)[0]);
      curve = CURVES.find((c) => c.oid === oid);
      if (!curve) throw unavailable(`The elliptic curve ${oid}`);
    }
  }
  if (!curve) throw new asn1.Asn1Error('EC private key without its curve');
  return ecPrivate(curve, d);
}

function readPkcs8(der: Uint8Array): Asymmetric {
  const parts = asn1.children(asn1.parse(der));
  const [oidNode, params] = asn1.children(asn1.expect(parts[1], asn1.TAG.SEQUENCE, 'an AlgorithmIdentifier'));
  const oid = asn1.readOid(oidNode);
  const inner = asn1.expect(parts[2], asn1.TAG.OCTET_STRING, 'the private key OCTET STRING').value;
  if (oid === OID.rsa) return readPkcs1Private(inner);
  if (oid === OID.ec) {
    const curve = CURVES.find((c) => c.oid === asn1.readOid(params));
    if (!curve) throw unavailable(`The elliptic curve ${asn1.readOid(params)}`);
    return readSec1(inner, curve);
  }
  if (oid === OID.ed25519 || oid === OID.x25519) {
    return okp(oid === OID.ed25519 ? 'ed25519' : 'x25519', asn1.expect(asn1.parse(inner), asn1.TAG.OCTET_STRING, 'an OCTET STRING').value);
  }
  throw unavailable(`The key type with OID ${oid}`);
}

/** An X.509 certificate's SubjectPublicKeyInfo (createPublicKey takes a certificate's PEM). */
function readCertificateKey(der: Uint8Array): Asymmetric {
  const [tbs] = asn1.children(asn1.parse(der));
  const fields = asn1.children(tbs);
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  return readSpki(fields[offset + 5].raw);
}

function writeSpki(m: Asymmetric): Uint8Array {
  if (m.kind === 'rsa') return asn1.sequence(asn1.sequence(asn1.oid(OID.rsa), asn1.nullValue()), asn1.bitString(writePkcs1(m, false)));
  if (m.kind === 'ec') return asn1.sequence(asn1.sequence(asn1.oid(OID.ec), asn1.oid(m.curve.oid)), asn1.bitString(m.pub));
  return asn1.sequence(asn1.sequence(asn1.oid(OID[m.kind])), asn1.bitString(m.pub));
}

function writePkcs1(m: Asymmetric, asPrivate: boolean): Uint8Array {
  if (m.kind !== 'rsa') throw coded(new TypeError(`The property 'options.type' is invalid: pkcs1 is for RSA keys. Received 'pkcs1'`), 'ERR_INVALID_ARG_VALUE');
  const k = m.rsa;
  if (!asPrivate) return asn1.sequence(asn1.integer(k.n), asn1.integer(k.e));
  if (k.p === undefined) throw unavailable('Exporting an RSA private key without its prime factors');
  return asn1.sequence(...[0n, k.n, k.e, k.d!, k.p, k.q!, k.dp!, k.dq!, k.qi!].map(asn1.integer));
}

function writeSec1(m: Asymmetric, withCurve: boolean): Uint8Array {
  if (m.kind !== 'ec') throw coded(new TypeError(`The property 'options.type' is invalid: sec1 is for EC keys. Received 'sec1'`), 'ERR_INVALID_ARG_VALUE');
  const parts = [asn1.integer(1), asn1.octetString(m.priv!)];
  if (withCurve) parts.push(asn1.context(0, asn1.oid(m.curve.oid)));
  parts.push(asn1.context(1, asn1.bitString(m.pub)));
  return asn1.sequence(...parts);
}

function writePkcs8(m: Asymmetric): Uint8Array {
  if (m.kind === 'rsa') return asn1.sequence(asn1.integer(0), asn1.sequence(asn1.oid(OID.rsa), asn1.nullValue()), asn1.octetString(writePkcs1(m, true)));
  if (m.kind === 'ec') return asn1.sequence(asn1.integer(0), asn1.sequence(asn1.oid(OID.ec), asn1.oid(m.curve.oid)), asn1.octetString(writeSec1(m, false)));
  return asn1.sequence(asn1.integer(0), asn1.sequence(asn1.oid(OID[m.kind])), asn1.octetString(asn1.octetString(m.priv!)));
}

// JWK
const bigB64url = (n: bigint) => b64url(asn1.bigIntToBytes(n));
function writeJwk(m: Material, asPrivate: boolean): Record<string, string> {
  if (m.kind === 'secret') return { kty: 'oct', k: b64url(m.bytes) };
  if (m.kind === 'rsa') {
    const k = m.rsa;
    const jwk: Record<string, string> = { kty: 'RSA', n: bigB64url(k.n), e: bigB64url(k.e) };
    if (asPrivate) {
      if (k.p === undefined) throw unavailable('Exporting an RSA private key without its prime factors');
      Object.assign(jwk, { d: bigB64url(k.d!), p: bigB64url(k.p), q: bigB64url(k.q!), dp: bigB64url(k.dp!), dq: bigB64url(k.dq!), qi: bigB64url(k.qi!) });
    }
    return jwk;
  }
  if (m.kind === 'ec') {
    const size = m.curve.bytes;
    if (!m.curve.jwk) throw coded(new Error(`Unsupported JWK EC curve: ${m.curve.name}.`), 'ERR_CRYPTO_JWK_UNSUPPORTED_CURVE');
    const jwk: Record<string, string> = { kty: 'EC', crv: m.curve.jwk, x: b64url(m.pub.subarray(1, 1 + size)), y: b64url(m.pub.subarray(1 + size)) };
    if (asPrivate) jwk.d = b64url(m.priv!);
    return jwk;
  }
  // workerd's shape (Node's has no "alg" and another key order)
  const jwk: Record<string, string> = m.kind === 'ed25519' ? { kty: 'OKP', alg: 'EdDSA', crv: 'Ed25519', x: b64url(m.pub) } : { kty: 'OKP', crv: 'X25519', x: b64url(m.pub) };
  if (asPrivate) jwk.d = b64url(m.priv!);
  return jwk;
}

function readJwk(jwk: unknown, wantPrivate: boolean): Asymmetric {
  if (jwk === null || typeof jwk !== 'object') throw coded(new TypeError('The "key.key" property must be of type object'), 'ERR_INVALID_ARG_TYPE');
  const j = jwk as Record<string, unknown>;
  const badJwk = (what: string) => coded(new TypeError(`Invalid JWK ${what}`), 'ERR_CRYPTO_INVALID_JWK');
  if (j.kty === 'RSA') {
    const n = asn1.bytesToBigInt(fromB64url(j.n, 'n'));
    const e = asn1.bytesToBigInt(fromB64url(j.e, 'e'));
    if (!wantPrivate) return { kind: 'rsa', rsa: { n, e } };
    if (j.d === undefined) throw badJwk('RSA key: a private key needs "d"');
    const [d, p, q, dp, dq, qi] = (['d', 'p', 'q', 'dp', 'dq', 'qi'] as const).map((name) => (j[name] === undefined ? undefined : asn1.bytesToBigInt(fromB64url(j[name], name))));
    return { kind: 'rsa', rsa: { n, e, d, p, q, dp, dq, qi } };
  }
  if (j.kty === 'EC') {
    const curve = curveNamed(j.crv);
    if (!curve || !curve.jwk || curve.jwk !== j.crv) throw badJwk(`EC key: unsupported curve ${String(j.crv)}`);
    if (wantPrivate) {
      if (j.d === undefined) throw badJwk('EC key: a private key needs "d"');
      return ecPrivate(curve, fromB64url(j.d, 'd'));
    }
    const x = fromB64url(j.x, 'x');
    const y = fromB64url(j.y, 'y');
    if (x.length !== curve.bytes || y.length !== curve.bytes) throw badJwk('EC key: wrong coordinate length');
    return { kind: 'ec', curve, pub: curvePoint(curve, new Uint8Array([4, ...x, ...y])) };
  }
  if (j.kty === 'OKP') {
    const kind = j.crv === 'Ed25519' ? 'ed25519' : j.crv === 'X25519' ? 'x25519' : null;
    if (!kind) throw badJwk(`OKP key: unsupported curve ${String(j.crv)}`);
    if (wantPrivate) {
      if (j.d === undefined) throw badJwk('OKP key: a private key needs "d"');
      return okp(kind, fromB64url(j.d, 'd'));
    }
    const x = fromB64url(j.x, 'x');
    if (x.length !== 32) throw badJwk('OKP key: wrong length');
    return { kind, pub: x };
  }
  throw badJwk(`key type ${String(j.kty)}`);
}

// --- KeyObject ------------------------------------------------------------------------------------

const materials = new WeakMap<object, Material>();
const constructing = Symbol('KeyObject');

function materialOf(key: unknown): Material | undefined {
  return typeof key === 'object' && key !== null ? materials.get(key) : undefined;
}

export class KeyObject {
  constructor(type: unknown, token?: unknown) {
    if (token !== constructing) throw coded(new TypeError('Illegal constructor: use createSecretKey, createPublicKey or createPrivateKey'), 'ERR_ILLEGAL_CONSTRUCTOR');
    void type;
  }

  get type(): 'secret' | 'public' | 'private' {
    const m = materials.get(this)!;
    return m.kind === 'secret' ? 'secret' : isPrivate(m) ? 'private' : 'public';
  }

  get asymmetricKeyType(): string | undefined {
    const m = materials.get(this)!;
    return m.kind === 'secret' ? undefined : m.kind;
  }

  get asymmetricKeyDetails(): Record<string, unknown> | undefined {
    const m = materials.get(this)!;
    if (m.kind === 'secret') return undefined;
    if (m.kind === 'rsa') return { modulusLength: asn1.bitLength(m.rsa.n), publicExponent: m.rsa.e };
    if (m.kind === 'ec') return { namedCurve: m.curve.name };
    return {};
  }

  get symmetricKeySize(): number | undefined {
    const m = materials.get(this)!;
    return m.kind === 'secret' ? m.bytes.length : undefined;
  }

  export(options?: { format?: string; type?: string; cipher?: string; passphrase?: unknown }): unknown {
    const m = materials.get(this)!;
    if (options !== undefined && (options === null || typeof options !== 'object')) throw argType('options', 'of type object');
    const format = options?.format ?? (m.kind === 'secret' ? 'buffer' : 'pem');
    if (m.kind === 'secret') {
      if (format === 'jwk') return writeJwk(m, true);
      if (format !== 'buffer') throw argValue('options.format', format, "must be one of: 'buffer', 'jwk'");
      return output(m.bytes.slice());
    }
    const asPrivate = isPrivate(m);
    if (format === 'jwk') return writeJwk(m, asPrivate);
    if (format !== 'pem' && format !== 'der') throw argValue('options.format', format, "must be one of: 'pem', 'der', 'jwk'");
    if (options?.cipher !== undefined || options?.passphrase !== undefined) throw unavailable('Encrypting an exported private key (options.cipher)');
    const type = options?.type;
    let der: Uint8Array;
    let label: string;
    if (!asPrivate) {
      if (type === 'spki') [der, label] = [writeSpki(m), 'PUBLIC KEY'];
      else if (type === 'pkcs1') [der, label] = [writePkcs1(m, false), 'RSA PUBLIC KEY'];
      else throw argValue('options.type', type, "must be one of: 'pkcs1', 'spki'");
    } else if (type === 'pkcs8') [der, label] = [writePkcs8(m), 'PRIVATE KEY'];
    else if (type === 'pkcs1') [der, label] = [writePkcs1(m, true), 'RSA PRIVATE KEY'];
    else if (type === 'sec1') [der, label] = [writeSec1(m, true), 'EC PRIVATE KEY'];
    else throw argValue('options.type', type, "must be one of: 'pkcs1', 'pkcs8', 'sec1'");
    return format === 'pem' ? asn1.pemEncode(label, der, toB64) : output(der);
  }

  equals(other: unknown): boolean {
    const theirs = materialOf(other);
    if (!(other instanceof KeyObject) || !theirs) throw argType('otherKeyObject', 'an instance of KeyObject');
    const mine = materials.get(this)!;
    if (this.type !== other.type) return false;
    const a = mine.kind === 'secret' ? mine.bytes : isPrivate(mine) ? writePkcs8(mine) : writeSpki(mine);
    const b = theirs.kind === 'secret' ? theirs.bytes : isPrivate(theirs as Asymmetric) ? writePkcs8(theirs as Asymmetric) : writeSpki(theirs as Asymmetric);
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }

  toCryptoKey(): never {
    // crypto.subtle's keys live on the host (bindings/crypto) and are made asynchronously; a
    // synchronous conversion cannot reach them.
    throw unavailable('KeyObject.toCryptoKey (use crypto.subtle.importKey with key.export({ format: "jwk" }))');
  }

  static from(_key: unknown): never {
    throw unavailable('KeyObject.from (use crypto.subtle.exportKey("jwk", key) and createPrivateKey/createPublicKey({ key: jwk, format: "jwk" }))');
  }

  get [Symbol.toStringTag](): string {
    return 'KeyObject';
  }
}
export class SecretKeyObject extends KeyObject {}
export class PublicKeyObject extends KeyObject {}
export class PrivateKeyObject extends KeyObject {}
Object.defineProperty(KeyObject.prototype, Symbol.for('cinder.node.keyObject'), { value: true });

setSecretKeyReader((key) => {
  const m = materialOf(key);
  return m?.kind === 'secret' ? m.bytes : undefined;
});

function keyObject(m: Material): KeyObject {
  const Class = m.kind === 'secret' ? SecretKeyObject : isPrivate(m) ? PrivateKeyObject : PublicKeyObject;
  const key = new Class(undefined, constructing);
  materials.set(key, m);
  return key;
}

export function createSecretKey(key: Input, encoding?: string): KeyObject {
  return keyObject({ kind: 'secret', bytes: toBytes(key, encoding, 'key').slice() });
}

type KeyInput = Input | KeyObject | { key: unknown; format?: string; type?: string; passphrase?: unknown; encoding?: string; [option: string]: unknown };

/** Key material from what createPrivateKey/createPublicKey, sign, publicEncrypt... take. */
function readKey(input: unknown, wantPrivate: boolean, acceptPrivateForPublic = true): Asymmetric {
  const direct = materialOf(input);
  if (direct) {
    if (direct.kind === 'secret') throw coded(new TypeError('Invalid key object type secret, expected ' + (wantPrivate ? 'private.' : 'public.')), 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE');
    if (wantPrivate && !isPrivate(direct)) throw coded(new TypeError('Invalid key object type public, expected private.'), 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE');
    return direct;
  }
  let data: unknown = input;
  let format = 'pem';
  let type: string | undefined;
  let encoding: string | undefined;
  let passphrase: unknown;
  if (typeof input === 'object' && input !== null && !ArrayBuffer.isView(input) && !(input instanceof ArrayBuffer)) {
    const options = input as Exclude<KeyInput, Input | KeyObject>;
    const nested = materialOf(options.key);
    if (nested) return readKey(options.key, wantPrivate, acceptPrivateForPublic);
    data = options.key;
    format = options.format ?? 'pem';
    type = options.type;
    encoding = options.encoding;
    passphrase = options.passphrase;
  }
  if (format === 'jwk') return readJwk(data, wantPrivate || (acceptPrivateForPublic && typeof data === 'object' && data !== null && 'd' in data));
  if (typeof data !== 'string' && !ArrayBuffer.isView(data) && !(data instanceof ArrayBuffer)) {
    throw argType('key', 'of type string or an instance of ArrayBuffer, Buffer, TypedArray, DataView, KeyObject or CryptoKey');
  }
  if (format === 'der') {
    const der = toBytes(data, encoding, 'key');
    if (type === 'spki' && !wantPrivate) return readSpki(der);
    if (type === 'pkcs1') return wantPrivate ? readPkcs1Private(der) : readPkcs1Public(der);
    if (type === 'pkcs8') return readPkcs8(der);
    if (type === 'sec1') return readSec1(der);
    throw argValue('key.type', type, wantPrivate ? "must be one of: 'pkcs1', 'pkcs8', 'sec1'" : "must be one of: 'pkcs1', 'spki'");
  }
  if (format !== 'pem') throw argValue('key.format', format, "must be one of: 'pem', 'der', 'jwk'");
  const text = typeof data === 'string' ? data : Buffer.from(toBytes(data, undefined, 'key')).toString('utf8');
  const pem = asn1.pemDecode(text, b64);
  if (!pem) throw coded(new Error('error:1E08010C:DECODER routines::unsupported'), 'ERR_OSSL_UNSUPPORTED');
  if (pem.label.startsWith('ENCRYPTED')) {
    if (passphrase === undefined) throw coded(new TypeError('Passphrase required for encrypted key'), 'ERR_MISSING_PASSPHRASE');
    throw unavailable('Decrypting an encrypted private key (a passphrase)');
  }
  const publicLabels: Record<string, (der: Uint8Array) => Asymmetric> = { 'PUBLIC KEY': readSpki, 'RSA PUBLIC KEY': readPkcs1Public, CERTIFICATE: readCertificateKey };
  const privateLabels: Record<string, (der: Uint8Array) => Asymmetric> = { 'PRIVATE KEY': readPkcs8, 'RSA PRIVATE KEY': readPkcs1Private, 'EC PRIVATE KEY': (der) => readSec1(der) };
  const privateReader = privateLabels[pem.label];
  if (privateReader && (wantPrivate || acceptPrivateForPublic)) return privateReader(pem.der);
  const publicReader = publicLabels[pem.label];
  if (publicReader && !wantPrivate) return publicReader(pem.der);
  throw coded(new Error(`error:1E08010C:DECODER routines::unsupported (a PEM "${pem.label}" block is not ${wantPrivate ? 'a private' : 'a'} key)`), 'ERR_OSSL_UNSUPPORTED');
}

export function createPrivateKey(key: KeyInput): KeyObject {
  if (materialOf(key)) throw argType('key', 'of type string or an instance of ArrayBuffer, Buffer, TypedArray, DataView or Object');
  return keyObject(readKey(key, true));
}

export function createPublicKey(key: KeyInput): KeyObject {
  const m = readKey(key, false);
  return keyObject(publicOf(m));
}

// --- key generation -------------------------------------------------------------------------------

/** As crypto.subtle's RSA key generation is bounded (bindings/crypto): the work is the worker's,
 *  under its CPU limit, but there is no reason to let one call ask for unbounded work. */
const MAX_RSA_MODULUS_BITS = 4096;
const KEY_PAIR_TYPES = "'rsa', 'ec', 'ed25519', 'x25519', 'dh'";

interface KeyPairOptions {
  modulusLength?: number;
  publicExponent?: number;
  namedCurve?: string;
  publicKeyEncoding?: Record<string, string>;
  privateKeyEncoding?: Record<string, string>;
}

function checkRsaOptions(options: KeyPairOptions): { bits: number; e: bigint } {
  const bits = options.modulusLength;
  if (typeof bits !== 'number' || !Number.isInteger(bits)) throw coded(new TypeError('The "options.modulusLength" property must be of type number'), 'ERR_INVALID_ARG_TYPE');
  if (bits < 512 || bits > MAX_RSA_MODULUS_BITS) {
    throw coded(new RangeError(`The value of "options.modulusLength" is out of range. It must be >= 512 && <= ${MAX_RSA_MODULUS_BITS} in Cinder. Received ${bits}`), 'ERR_OUT_OF_RANGE');
  }
  const e = options.publicExponent ?? 0x10001;
  if (typeof e !== 'number' || !Number.isInteger(e) || e < 3 || e % 2 === 0) throw argValue('options.publicExponent', e);
  return { bits, e: BigInt(e) };
}

function generatePairMaterial(type: unknown, options: KeyPairOptions | undefined): Asymmetric {
  if (typeof type !== 'string') throw argType('type', 'of type string');
  const opts = options ?? {};
  switch (type) {
    case 'rsa': {
      const { bits, e } = checkRsaOptions(opts);
      return { kind: 'rsa', rsa: rsa.generateRsaKey(bits, e) };
    }
    case 'ec': {
      if (typeof opts.namedCurve !== 'string') throw coded(new TypeError('The "options.namedCurve" property must be of type string'), 'ERR_INVALID_ARG_TYPE');
      const curve = curveNamed(opts.namedCurve);
      if (!curve) throw coded(new TypeError(`Invalid EC curve name: ${opts.namedCurve}`), 'ERR_CRYPTO_INVALID_CURVE');
      return ecPrivate(curve, curve.impl.utils.randomSecretKey());
    }
    case 'ed25519':
      return okp('ed25519', curve25519().ed25519.utils.randomSecretKey());
    case 'x25519':
      return okp('x25519', curve25519().x25519.utils.randomSecretKey());
    case 'dh':
      throw unavailable("generateKeyPair('dh') (use getDiffieHellman or createDiffieHellman)");
    default:
      throw argValue('type', type, `must be one of: ${KEY_PAIR_TYPES}`);
  }
}

function pairResult(m: Asymmetric, options: KeyPairOptions | undefined): { publicKey: unknown; privateKey: unknown } {
  const privateKey = keyObject(m);
  const publicKey = keyObject(publicOf(m));
  return {
    publicKey: options?.publicKeyEncoding ? publicKey.export(options.publicKeyEncoding) : publicKey,
    privateKey: options?.privateKeyEncoding ? privateKey.export(options.privateKeyEncoding) : privateKey,
  };
}

export function generateKeyPairSync(type: string, options?: KeyPairOptions): { publicKey: unknown; privateKey: unknown } {
  return pairResult(generatePairMaterial(type, options), options);
}

type SubtleLike = {
  generateKey(algorithm: object, extractable: boolean, usages: string[]): Promise<{ privateKey: unknown }>;
  exportKey(format: string, key: unknown): Promise<ArrayBuffer>;
};

function nativeSubtle(): SubtleLike | undefined {
  try {
    return webCrypto.subtle as unknown as SubtleLike;
  } catch {
    return undefined;
  }
}

export function generateKeyPair(type: string, options: KeyPairOptions | undefined, callback: (error: Error | null, publicKey?: unknown, privateKey?: unknown) => void): void {
  if (typeof options === 'function') [callback, options] = [options as typeof callback, undefined];
  if (typeof callback !== 'function') throw argType('callback', 'of type function');
  const subtle = type === 'rsa' ? nativeSubtle() : undefined;
  if (subtle) {
    // The asynchronous form can wait: an RSA key is made by Web Crypto, natively on the host
    // (bounded there to the same modulus sizes), where the JavaScript would spend the worker's CPU.
    const { bits, e } = checkRsaOptions(options ?? {});
    subtle
      .generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: bits, publicExponent: asn1.bigIntToBytes(e), hash: 'SHA-256' }, true, ['sign', 'verify'])
      .then((pair) => subtle.exportKey('pkcs8', pair.privateKey))
      .then(
        (pkcs8) => {
          let result: { publicKey: unknown; privateKey: unknown };
          try {
            result = pairResult(readPkcs8(new Uint8Array(pkcs8)), options);
          } catch (error) {
            callback(error as Error);
            return;
          }
          callback(null, result.publicKey, result.privateKey);
        },
        (error: Error) => callback(error),
      );
    return;
  }
  later(callback, () => {
    const { publicKey, privateKey } = generateKeyPairSync(type, options);
    return [publicKey, privateKey];
  }, true);
}
Object.defineProperty(generateKeyPair, Symbol.for('nodejs.util.promisify.custom'), {
  value: (type: string, options?: KeyPairOptions) =>
    new Promise((resolve, reject) => generateKeyPair(type, options, (error, publicKey, privateKey) => (error ? reject(error) : resolve({ publicKey, privateKey })))),
});

export function generateKeySync(type: string, options: { length?: number }): KeyObject {
  if (typeof type !== 'string') throw argType('type', 'of type string');
  const length = options?.length;
  if (typeof length !== 'number' || !Number.isInteger(length)) throw coded(new TypeError('The "options.length" property must be of type number'), 'ERR_INVALID_ARG_TYPE');
  if (type === 'hmac') {
    if (length < 8 || length > 2 ** 31 - 1) throw coded(new RangeError(`The value of "options.length" is out of range. It must be >= 8 && <= 2147483647. Received ${length}`), 'ERR_OUT_OF_RANGE');
  } else if (type === 'aes') {
    if (![128, 192, 256].includes(length)) throw argValue('options.length', length, 'must be one of: 128, 192, 256');
  } else throw argValue('type', type, "must be one of: 'hmac', 'aes'");
  const bytes = new Uint8Array(Math.floor(length / 8));
  for (let offset = 0; offset < bytes.length; offset += 65536) webCrypto.getRandomValues(bytes.subarray(offset, Math.min(bytes.length, offset + 65536)));
  return keyObject({ kind: 'secret', bytes });
}

export function generateKey(type: string, options: { length?: number }, callback: Callback<KeyObject>): void {
  later(callback, () => generateKeySync(type, options));
}

// --- signatures -----------------------------------------------------------------------------------

export const constants = {
  RSA_PKCS1_PADDING: 1,
  RSA_NO_PADDING: 3,
  RSA_PKCS1_OAEP_PADDING: 4,
  RSA_PKCS1_PSS_PADDING: 6,
  RSA_PSS_SALTLEN_DIGEST: -1,
  RSA_PSS_SALTLEN_MAX_SIGN: -2,
  RSA_PSS_SALTLEN_AUTO: -2,
  POINT_CONVERSION_COMPRESSED: 2,
  POINT_CONVERSION_UNCOMPRESSED: 4,
  POINT_CONVERSION_HYBRID: 6,
};

interface SignOptions {
  padding?: number;
  saltLength?: number;
  dsaEncoding?: string;
}

function signOptions(key: unknown): SignOptions {
  if (typeof key !== 'object' || key === null || ArrayBuffer.isView(key) || materialOf(key)) return {};
  const { padding, saltLength, dsaEncoding } = key as SignOptions;
  if (dsaEncoding !== undefined && dsaEncoding !== 'der' && dsaEncoding !== 'ieee-p1363') throw argValue('options.dsaEncoding', dsaEncoding);
  return { padding, saltLength, dsaEncoding };
}

function signDigest(m: Asymmetric, algorithm: string | null | undefined): string | null {
  if (m.kind === 'ed25519') {
    if (algorithm !== null && algorithm !== undefined) throw coded(new Error('Ed25519 signs the message itself: pass null as the algorithm'), 'ERR_CRYPTO_INVALID_DIGEST');
    return null;
  }
  if (m.kind === 'x25519') throw coded(new Error('operation not supported for this keytype'), 'ERR_OSSL_EVP_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE');
  return algorithm === null || algorithm === undefined ? 'sha256' : digestName(algorithm);
}

function signWith(m: Asymmetric, hash: string | null, data: Uint8Array, options: SignOptions, hashed?: Uint8Array): Uint8Array {
  if (m.kind === 'ed25519') return curve25519().ed25519.sign(data, m.priv!);
  const h = hashed ?? digest(hash!, data);
  if (m.kind === 'rsa') {
    const padding = options.padding ?? constants.RSA_PKCS1_PADDING;
    if (padding === constants.RSA_PKCS1_PSS_PADDING) return rsa.signPss(m.rsa, hash!, h, options.saltLength ?? constants.RSA_PSS_SALTLEN_MAX_SIGN);
    if (padding !== constants.RSA_PKCS1_PADDING) throw coded(new Error('illegal or unsupported padding mode'), 'ERR_OSSL_RSA_ILLEGAL_OR_UNSUPPORTED_PADDING_MODE');
    return rsa.signPkcs1(m.rsa, hash!, h);
  }
  if (m.kind === 'ec') return m.curve.impl.sign(h, m.priv!, { prehash: false, lowS: false, format: options.dsaEncoding === 'ieee-p1363' ? 'compact' : 'der' });
  throw coded(new Error('operation not supported for this keytype'), 'ERR_OSSL_EVP_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE');
}

function verifyWith(m: Asymmetric, hash: string | null, data: Uint8Array, signature: Uint8Array, options: SignOptions, hashed?: Uint8Array): boolean {
  if (m.kind === 'ed25519') {
    try {
      return curve25519().ed25519.verify(signature, data, m.pub);
    } catch {
      return false;
    }
  }
  const h = hashed ?? digest(hash!, data);
  if (m.kind === 'rsa') {
    const padding = options.padding ?? constants.RSA_PKCS1_PADDING;
    if (padding === constants.RSA_PKCS1_PSS_PADDING) return rsa.verifyPss(m.rsa, hash!, h, signature, options.saltLength ?? constants.RSA_PSS_SALTLEN_AUTO);
    if (padding !== constants.RSA_PKCS1_PADDING) throw coded(new Error('illegal or unsupported padding mode'), 'ERR_OSSL_RSA_ILLEGAL_OR_UNSUPPORTED_PADDING_MODE');
    return rsa.verifyPkcs1(m.rsa, hash!, h, signature);
  }
  if (m.kind === 'ec') {
    try {
      return m.curve.impl.verify(signature, h, m.pub, { prehash: false, lowS: false, format: options.dsaEncoding === 'ieee-p1363' ? 'compact' : 'der' });
    } catch {
      return false;
    }
  }
  throw coded(new Error('operation not supported for this keytype'), 'ERR_OSSL_EVP_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE');
}

export function sign(algorithm: string | null | undefined, data: Input, key: KeyInput, callback?: Callback<BufferLike>): BufferLike | undefined {
  const bytes = toBytes(data, undefined, 'data');
  const m = readKey(key, true);
  const hash = signDigest(m, algorithm);
  const options = signOptions(key);
  const run = () => output(signWith(m, hash, bytes, options)) as BufferLike;
  if (callback === undefined) return run();
  later(callback, run);
  return undefined;
}

export function verify(algorithm: string | null | undefined, data: Input, key: KeyInput, signature: Input, callback?: Callback<boolean>): boolean | undefined {
  const bytes = toBytes(data, undefined, 'data');
  const sig = toBytes(signature, undefined, 'signature');
  const m = publicOf(readKey(key, false));
  const hash = signDigest(m, algorithm);
  const options = signOptions(key);
  const run = () => verifyWith(m, hash, bytes, sig, options);
  if (callback === undefined) return run();
  later(callback, run);
  return undefined;
}

/** Sign and Verify: the digest is streamed in by update() (Node's are Writable streams too; these
 *  take write()/end() as update() for code that feeds them so, without the stream events). */
class Signer {
  protected readonly hash: string;
  protected readonly core: ReturnType<typeof newHash>;
  protected done = false;

  constructor(algorithm: string) {
    this.hash = digestName(algorithm, 'Signature');
    this.core = newHash(this.hash);
  }

  update(data: Input, inputEncoding?: string): this {
    if (this.done) throw coded(new Error('Digest already called'), 'ERR_CRYPTO_HASH_FINALIZED');
    this.core.update(toBytes(data, inputEncoding, 'data'));
    return this;
  }

  write(data: Input, encoding?: string): boolean {
    this.update(data, encoding);
    return true;
  }

  end(data?: Input, encoding?: string): this {
    if (data !== undefined) this.update(data, encoding);
    return this;
  }

  protected finish(m: Asymmetric): Uint8Array {
    if (m.kind !== 'rsa' && m.kind !== 'ec') throw coded(new Error(`${m.kind} keys cannot be used with createSign/createVerify: use crypto.sign(null, data, key)`), 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE');
    if (this.done) throw coded(new Error('Digest already called'), 'ERR_CRYPTO_HASH_FINALIZED');
    this.done = true;
    return this.core.digest();
  }
}

export class Sign extends Signer {
  sign(privateKey: KeyInput, outputEncoding?: string): BufferLike | string {
    const m = readKey(privateKey, true);
    const hashed = this.finish(m);
    return output(signWith(m, this.hash, new Uint8Array(0), signOptions(privateKey), hashed), outputEncoding);
  }
}

export class Verify extends Signer {
  verify(publicKey: KeyInput, signature: Input, signatureEncoding?: string): boolean {
    const m = publicOf(readKey(publicKey, false));
    const hashed = this.finish(m);
    return verifyWith(m, this.hash, new Uint8Array(0), toBytes(signature, signatureEncoding, 'signature'), signOptions(publicKey), hashed);
  }
}

export function createSign(algorithm: string, _options?: unknown): Sign {
  return new Sign(algorithm);
}

export function createVerify(algorithm: string, _options?: unknown): Verify {
  return new Verify(algorithm);
}

// --- RSA encryption -------------------------------------------------------------------------------

interface EncryptOptions {
  padding?: number;
  oaepHash?: string;
  oaepLabel?: Input;
}

function encryptOptions(key: unknown, defaultPadding: number): { padding: number; hash: string; label: Uint8Array } {
  const options: EncryptOptions = typeof key === 'object' && key !== null && !ArrayBuffer.isView(key) && !materialOf(key) ? (key as EncryptOptions) : {};
  const padding = options.padding ?? defaultPadding;
  const hash = options.oaepHash === undefined ? 'sha1' : digestName(options.oaepHash);
  const label = options.oaepLabel === undefined ? new Uint8Array(0) : toBytes(options.oaepLabel, undefined, 'oaepLabel');
  return { padding, hash, label };
}

function rsaOf(m: Asymmetric): rsa.RsaKey {
  if (m.kind !== 'rsa') throw coded(new Error('operation not supported for this keytype'), 'ERR_OSSL_EVP_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE');
  return m.rsa;
}

function rawBlock(key: rsa.RsaKey, data: Uint8Array): bigint {
  if (data.length !== rsa.modulusBytes(key)) throw cryptoError('data too small for key size', 'ERR_OSSL_RSA_DATA_TOO_SMALL_FOR_KEY_SIZE');
  return asn1.bytesToBigInt(data);
}

export function publicEncrypt(key: KeyInput, buffer: Input): BufferLike {
  const k = rsaOf(publicOf(readKey(key, false)));
  const data = toBytes(buffer, undefined, 'buffer');
  const { padding, hash, label } = encryptOptions(key, constants.RSA_PKCS1_OAEP_PADDING);
  const size = rsa.modulusBytes(k);
  if (padding === constants.RSA_PKCS1_OAEP_PADDING) return output(rsa.encryptOaep(k, hash, label, data)) as BufferLike;
  if (padding === constants.RSA_PKCS1_PADDING) return output(asn1.bigIntToBytes(rsa.rsaPublic(k, asn1.bytesToBigInt(rsa.padPkcs1(size, data, 2))), size)) as BufferLike;
  if (padding === constants.RSA_NO_PADDING) return output(asn1.bigIntToBytes(rsa.rsaPublic(k, rawBlock(k, data)), size)) as BufferLike;
  throw coded(new Error('unknown padding type'), 'ERR_OSSL_RSA_UNKNOWN_PADDING_TYPE');
}

export function privateDecrypt(key: KeyInput, buffer: Input): BufferLike {
  const k = rsaOf(readKey(key, true));
  const data = toBytes(buffer, undefined, 'buffer');
  const { padding, hash, label } = encryptOptions(key, constants.RSA_PKCS1_OAEP_PADDING);
  const size = rsa.modulusBytes(k);
  if (padding === constants.RSA_PKCS1_OAEP_PADDING) return output(rsa.decryptOaep(k, hash, label, data)) as BufferLike;
  if (data.length !== size) throw cryptoError('data length does not match the key size', 'ERR_OSSL_RSA_DATA_LEN_NOT_EQUAL_TO_MOD_LEN');
  const block = asn1.bigIntToBytes(rsa.rsaPrivate(k, asn1.bytesToBigInt(data)), size);
  if (padding === constants.RSA_PKCS1_PADDING) return output(rsa.unpadPkcs1(block, 2)) as BufferLike;
  if (padding === constants.RSA_NO_PADDING) return output(block) as BufferLike;
  throw coded(new Error('unknown padding type'), 'ERR_OSSL_RSA_UNKNOWN_PADDING_TYPE');
}

export function privateEncrypt(key: KeyInput, buffer: Input): BufferLike {
  const k = rsaOf(readKey(key, true));
  const data = toBytes(buffer, undefined, 'buffer');
  const { padding } = encryptOptions(key, constants.RSA_PKCS1_PADDING);
  const size = rsa.modulusBytes(k);
  if (padding === constants.RSA_PKCS1_PADDING) return output(asn1.bigIntToBytes(rsa.rsaPrivate(k, asn1.bytesToBigInt(rsa.padPkcs1(size, data, 1))), size)) as BufferLike;
  if (padding === constants.RSA_NO_PADDING) return output(asn1.bigIntToBytes(rsa.rsaPrivate(k, rawBlock(k, data)), size)) as BufferLike;
  throw coded(new Error('unknown padding type'), 'ERR_OSSL_RSA_UNKNOWN_PADDING_TYPE');
}

export function publicDecrypt(key: KeyInput, buffer: Input): BufferLike {
  const k = rsaOf(publicOf(readKey(key, false)));
  const data = toBytes(buffer, undefined, 'buffer');
  const { padding } = encryptOptions(key, constants.RSA_PKCS1_PADDING);
  const size = rsa.modulusBytes(k);
  if (data.length !== size) throw cryptoError('data length does not match the key size', 'ERR_OSSL_RSA_DATA_LEN_NOT_EQUAL_TO_MOD_LEN');
  const block = asn1.bigIntToBytes(rsa.rsaPublic(k, asn1.bytesToBigInt(data)), size);
  if (padding === constants.RSA_PKCS1_PADDING) return output(rsa.unpadPkcs1(block, 1)) as BufferLike;
  if (padding === constants.RSA_NO_PADDING) return output(block) as BufferLike;
  throw coded(new Error('unknown padding type'), 'ERR_OSSL_RSA_UNKNOWN_PADDING_TYPE');
}

// --- key agreement --------------------------------------------------------------------------------

function pointFormat(format: unknown): boolean {
  if (format === undefined || format === 'uncompressed') return false;
  if (format === 'compressed') return true;
  throw coded(new TypeError(`Invalid ECDH format: ${String(format)}`), 'ERR_CRYPTO_ECDH_INVALID_FORMAT');
}

export class ECDH {
  #curve: Curve;
  #priv: Uint8Array | null = null;
  #pub: Uint8Array | null = null;

  constructor(curve: string) {
    if (typeof curve !== 'string') throw argType('curve', 'of type string');
    const found = curveNamed(curve);
    // workerd's words for an unknown curve
    if (!found) throw new Error('Failed to create key using named curve');
    this.#curve = found;
  }

  static convertKey(key: Input, curve: string, inputEncoding?: string, outputEncoding?: string, format?: string): BufferLike | string {
    const found = curveNamed(curve);
    if (!found) throw coded(new TypeError(`Invalid EC curve name: ${curve}`), 'ERR_CRYPTO_INVALID_CURVE');
    const point = found.impl.Point.fromBytes(curvePoint(found, toBytes(key, inputEncoding, 'key')));
    return output(point.toBytes(pointFormat(format)), outputEncoding);
  }

  generateKeys(encoding?: string, format?: string): BufferLike | string {
    this.#priv = this.#curve.impl.utils.randomSecretKey();
    this.#pub = this.#curve.impl.getPublicKey(this.#priv, false);
    return this.getPublicKey(encoding, format);
  }

  computeSecret(otherPublicKey: Input, inputEncoding?: string, outputEncoding?: string): BufferLike | string {
    if (!this.#priv) throw coded(new Error('ECDH: no private key (call generateKeys or setPrivateKey first)'), 'ERR_CRYPTO_INVALID_STATE');
    const other = curvePoint(this.#curve, toBytes(otherPublicKey, inputEncoding, 'otherPublicKey'));
    return output(this.#curve.impl.getSharedSecret(this.#priv, other, true).subarray(1), outputEncoding);
  }

  getPublicKey(encoding?: string, format?: string): BufferLike | string {
    if (!this.#pub) throw coded(new Error('Failed to get ECDH public key'), 'ERR_CRYPTO_ECDH_INVALID_PUBLIC_KEY');
    const point = this.#curve.impl.Point.fromBytes(this.#pub);
    return output(point.toBytes(pointFormat(format)), encoding);
  }

  getPrivateKey(encoding?: string): BufferLike | string {
    if (!this.#priv) throw coded(new Error('Failed to get ECDH private key'), 'ERR_CRYPTO_INVALID_STATE');
    return output(this.#priv.slice(), encoding);
  }

  setPrivateKey(privateKey: Input, encoding?: string): void {
    const priv = curveScalar(this.#curve, toBytes(privateKey, encoding, 'privateKey'));
    this.#priv = priv;
    this.#pub = this.#curve.impl.getPublicKey(priv, false);
  }

  setPublicKey(publicKey: Input, encoding?: string): void {
    this.#pub = curvePoint(this.#curve, toBytes(publicKey, encoding, 'publicKey'));
  }
}

export function createECDH(curve: string): ECDH {
  return new ECDH(curve);
}

export function diffieHellman(options: { privateKey?: unknown; publicKey?: unknown }): BufferLike {
  if (options === null || typeof options !== 'object') throw argType('options', 'of type object');
  const priv = materialOf(options.privateKey);
  const pub = materialOf(options.publicKey);
  if (!priv || priv.kind === 'secret' || !isPrivate(priv)) throw coded(new TypeError('The "options.privateKey" property must be a private KeyObject'), 'ERR_INVALID_ARG_VALUE');
  if (!pub || pub.kind === 'secret') throw coded(new TypeError('The "options.publicKey" property must be a KeyObject'), 'ERR_INVALID_ARG_VALUE');
  if (priv.kind === 'x25519' && pub.kind === 'x25519') return output(curve25519().x25519.getSharedSecret(priv.priv!, pub.pub)) as BufferLike;
  if (priv.kind === 'ec' && pub.kind === 'ec' && priv.curve === pub.curve) return output(priv.curve.impl.getSharedSecret(priv.priv!, pub.pub, true).subarray(1)) as BufferLike;
  throw coded(new Error(`Incompatible key types for Diffie-Hellman: ${priv.kind} and ${pub.kind}`), 'ERR_CRYPTO_INCOMPATIBLE_KEY');
}

// --- scrypt ---------------------------------------------------------------------------------------

interface ScryptOptions {
  N?: number;
  cost?: number;
  r?: number;
  blockSize?: number;
  p?: number;
  parallelization?: number;
  maxmem?: number;
}

const SCRYPT_DEFAULT_MAXMEM = 32 << 20;

export function scryptSync(password: Input, salt: Input, keylen: number, options?: ScryptOptions): BufferLike {
  const pass = toBytes(password, undefined, 'password');
  const saltBytes = toBytes(salt, undefined, 'salt');
  if (typeof keylen !== 'number' || !Number.isInteger(keylen) || keylen < 0 || keylen > 2 ** 31 - 1) {
    throw coded(new RangeError(`The value of "keylen" is out of range. It must be >= 0 && <= 2147483647. Received ${keylen}`), 'ERR_OUT_OF_RANGE');
  }
  const N = options?.N ?? options?.cost ?? 16384;
  const r = options?.r ?? options?.blockSize ?? 8;
  const p = options?.p ?? options?.parallelization ?? 1;
  const maxmem = options?.maxmem ?? SCRYPT_DEFAULT_MAXMEM;
  const invalid = (why: string) => coded(new RangeError(`Invalid scrypt params: ${why}`), 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS');
  for (const [name, value] of [['N', N], ['r', r], ['p', p], ['maxmem', maxmem]] as const) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw invalid(`${name} must be a positive integer`);
  }
  if (N < 2 || (N & (N - 1)) !== 0) throw invalid('N must be a power of 2 greater than 1');
  // the memory scrypt takes, as OpenSSL counts it against maxmem
  if (128 * N * r + 128 * r * p > maxmem) throw invalid('memory limit exceeded');
  if (keylen === 0) return output(new Uint8Array(0)) as BufferLike;
  return output(nobleScrypt(pass, saltBytes, { N, r, p, dkLen: keylen, maxmem: maxmem + 1024 })) as BufferLike;
}

export function scrypt(password: Input, salt: Input, keylen: number, options: ScryptOptions | Callback<BufferLike> | undefined, callback?: Callback<BufferLike>): void {
  if (typeof options === 'function') [callback, options] = [options, undefined];
  const opts = options;
  if (typeof callback !== 'function') throw argType('callback', 'of type function');
  later(callback, () => scryptSync(password, salt, keylen, opts));
}
