// DER and PEM, as far as key files need them (SPKI, PKCS#8, PKCS#1, SEC1, an X.509 certificate's
// public key): a reader that refuses anything malformed by name, and a writer producing the exact
// encodings OpenSSL writes, so keys exported here compare equal byte for byte with Node's.

export class Asn1Error extends Error {
  readonly code = 'ERR_OSSL_ASN1_WRONG_TAG';
  constructor(what: string) {
    super(`Invalid key data: ${what}`);
  }
}

export const TAG = { INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, NULL: 0x05, OID: 0x06, SEQUENCE: 0x30 } as const;

export interface Der {
  tag: number;
  /** the content octets */
  value: Uint8Array;
  /** the whole encoding (tag, length, content) */
  raw: Uint8Array;
}

/** One TLV at `offset`. Definite lengths only (DER). */
function readOne(bytes: Uint8Array, offset: number): { node: Der; next: number } {
  if (offset + 2 > bytes.length) throw new Asn1Error('truncated');
  const tag = bytes[offset];
  let length = bytes[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > bytes.length) throw new Asn1Error('bad length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i];
    start += count;
  }
  const end = start + length;
  if (end > bytes.length) throw new Asn1Error('truncated');
  return { node: { tag, value: bytes.subarray(start, end), raw: bytes.subarray(offset, end) }, next: end };
}

/** The single element `bytes` must hold entirely. */
export function parse(bytes: Uint8Array): Der {
  const { node, next } = readOne(bytes, 0);
  if (next !== bytes.length) throw new Asn1Error('trailing data');
  return node;
}

/** The elements of a constructed node (SEQUENCE, [n]), checking the tag when asked. */
export function children(node: Der, tag: number = TAG.SEQUENCE): Der[] {
  if (node.tag !== tag) throw new Asn1Error(`expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  const out: Der[] = [];
  for (let offset = 0; offset < node.value.length; ) {
    const { node: child, next } = readOne(node.value, offset);
    out.push(child);
    offset = next;
  }
  return out;
}

export function expect(node: Der | undefined, tag: number, what: string): Der {
  if (!node || node.tag !== tag) throw new Asn1Error(`expected ${what}`);
  return node;
}

export function readInteger(node: Der | undefined): bigint {
  const value = expect(node, TAG.INTEGER, 'an INTEGER').value;
  if (value.length === 0) throw new Asn1Error('empty INTEGER');
  let n = 0n;
  for (const byte of value) n = (n << 8n) | BigInt(byte);
  if (value[0] & 0x80) n -= 1n << BigInt(value.length * 8);
  return n;
}

export function readOid(node: Der | undefined): string {
  const value = expect(node, TAG.OID, 'an OBJECT IDENTIFIER').value;
  const parts: number[] = [];
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    n = n * 128 + (value[i] & 0x7f);
    if (!(value[i] & 0x80)) {
      if (parts.length === 0) parts.push(n < 80 ? Math.floor(n / 40) : 2, n < 80 ? n % 40 : n - 80);
      else parts.push(n);
      n = 0;
    }
  }
  return parts.join('.');
}

/** A BIT STRING's bytes (no unused bits allowed: keys are whole bytes). */
export function readBitString(node: Der | undefined): Uint8Array {
  const value = expect(node, TAG.BIT_STRING, 'a BIT STRING').value;
  if (value.length === 0 || value[0] !== 0) throw new Asn1Error('BIT STRING with unused bits');
  return value.subarray(1);
}

// --- writing --------------------------------------------------------------------------------------

function lengthBytes(length: number): number[] {
  if (length < 0x80) return [length];
  const out: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) out.unshift(n & 255);
  return [0x80 | out.length, ...out];
}

export function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const length = parts.reduce((sum, p) => sum + p.length, 0);
  const head = [tag, ...lengthBytes(length)];
  const out = new Uint8Array(head.length + length);
  out.set(head);
  let offset = head.length;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export const sequence = (...parts: Uint8Array[]) => tlv(TAG.SEQUENCE, ...parts);
export const octetString = (bytes: Uint8Array) => tlv(TAG.OCTET_STRING, bytes);
export const bitString = (bytes: Uint8Array) => tlv(TAG.BIT_STRING, new Uint8Array([0]), bytes);
export const nullValue = () => new Uint8Array([TAG.NULL, 0]);
/** [n] EXPLICIT */
export const context = (n: number, ...parts: Uint8Array[]) => tlv(0xa0 | n, ...parts);

/** A non-negative INTEGER in its minimal two's-complement form. */
export function integer(n: bigint | number): Uint8Array {
  let value = BigInt(n);
  if (value < 0n) throw new RangeError('negative INTEGER');
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(value & 255n));
    value >>= 8n;
  } while (value > 0n);
  if (bytes[0] & 0x80) bytes.unshift(0);
  return tlv(TAG.INTEGER, new Uint8Array(bytes));
}

export function oid(dotted: string): Uint8Array {
  const parts = dotted.split('.').map(Number);
  const body: number[] = [];
  const push = (n: number) => {
    const chunk = [n & 0x7f];
    for (n = Math.floor(n / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | (n & 0x7f));
    body.push(...chunk);
  };
  push(parts[0] * 40 + parts[1]);
  for (const part of parts.slice(2)) push(part);
  return tlv(TAG.OID, new Uint8Array(body));
}

// --- PEM ------------------------------------------------------------------------------------------

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/;

/** The first PEM block of `text`: its label and DER bytes; null when there is none. */
export function pemDecode(text: string, base64: (s: string) => Uint8Array): { label: string; der: Uint8Array } | null {
  const match = PEM_BLOCK.exec(text);
  if (!match) return null;
  const body = match[2].replace(/\r/g, '');
  if (/^[A-Za-z-]+:/m.test(body)) {
    // RFC 1421 headers (Proc-Type: 4,ENCRYPTED): the legacy OpenSSL encrypted form
    return { label: `ENCRYPTED ${match[1]}`, der: new Uint8Array(0) };
  }
  return { label: match[1], der: base64(body.replace(/\s+/g, '')) };
}

export function pemEncode(label: string, der: Uint8Array, base64: (bytes: Uint8Array) => string): string {
  const text = base64(der);
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 64) lines.push(text.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

// --- big-endian integers ------------------------------------------------------------------------

export function bytesToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const byte of bytes) n = (n << 8n) | BigInt(byte);
  return n;
}

/** `n` as exactly `length` big-endian bytes (throws when it does not fit). */
export function bigIntToBytes(n: bigint, length?: number): Uint8Array {
  const bytes: number[] = [];
  for (let v = n; v > 0n; v >>= 8n) bytes.unshift(Number(v & 255n));
  if (length === undefined) return new Uint8Array(bytes.length ? bytes : [0]);
  if (bytes.length > length) throw new RangeError('integer too large');
  const out = new Uint8Array(length);
  out.set(bytes, length - bytes.length);
  return out;
}

export function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}
