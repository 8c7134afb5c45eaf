// atob/btoa (HTML §8.3) and the byte-level base64 helpers behind them. atob implements the
// Infra spec's "forgiving-base64 decode": ASCII whitespace anywhere is ignored, padding is
// optional but must be right when present, and anything else is an InvalidCharacterError.
import { DOMException } from './dom-exception.js';
import { latin1Decode } from './encoding.js';
import { requireArgs, toDOMString } from './idl.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

// char code -> 6-bit value, or -1; built on first use (no typed arrays in the snapshot heap).
let decodeTable: Int8Array | null = null;
function table(): Int8Array {
  if (!decodeTable) {
    decodeTable = new Int8Array(128).fill(-1);
    for (let i = 0; i < 64; i++) decodeTable[ALPHABET.charCodeAt(i)] = i;
  }
  return decodeTable;
}

/** Standard base64 with padding. */
export function encodeBase64(bytes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  const length = bytes.length;
  let o = 0;
  let i = 0;
  for (; i + 2 < length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out[o++] = ALPHABET.charCodeAt(n >> 18);
    out[o++] = ALPHABET.charCodeAt((n >> 12) & 63);
    out[o++] = ALPHABET.charCodeAt((n >> 6) & 63);
    out[o++] = ALPHABET.charCodeAt(n & 63);
  }
  if (i < length) {
    const n = (bytes[i] << 16) | (i + 1 < length ? bytes[i + 1] << 8 : 0);
    out[o++] = ALPHABET.charCodeAt(n >> 18);
    out[o++] = ALPHABET.charCodeAt((n >> 12) & 63);
    out[o++] = i + 1 < length ? ALPHABET.charCodeAt((n >> 6) & 63) : 61; // '='
    out[o++] = 61;
  }
  return latin1Decode(out);
}

function isAsciiWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

/** Infra "forgiving-base64 decode": the bytes, or null on failure. */
export function decodeBase64(input: string): Uint8Array | null {
  const map = table();
  // 1. Strip ASCII whitespace (a no-op copy-free pass when there is none, the usual case).
  let data = input;
  for (let i = 0; i < input.length; i++) {
    if (isAsciiWhitespace(input.charCodeAt(i))) {
      data = input.replace(/[\t\n\f\r ]+/g, '');
      break;
    }
  }
  // 2. With a length that is a multiple of 4, drop one or two trailing '='.
  let length = data.length;
  if (length % 4 === 0 && length > 0 && data.charCodeAt(length - 1) === 61) {
    length--;
    if (data.charCodeAt(length - 1) === 61) length--;
  }
  // 3. A remainder of 1 cannot encode anything; '=' anywhere else is not in the alphabet.
  if (length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((length * 3) / 4));
  let buffer = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < length; i++) {
    const c = data.charCodeAt(i);
    const v = c < 128 ? map[c] : -1;
    if (v < 0) return null;
    buffer = (buffer << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (buffer >> bits) & 0xff;
    }
  }
  // Leftover bits (4 or 2) are discarded, whatever their value, as the spec says.
  return out;
}

export function atob(data: unknown): string {
  requireArgs(arguments.length, 1, "Failed to execute 'atob'");
  const bytes = decodeBase64(toDOMString(data));
  if (!bytes) throw new DOMException('The string to be decoded is not correctly encoded.', 'InvalidCharacterError');
  return latin1Decode(bytes);
}

export function btoa(data: unknown): string {
  requireArgs(arguments.length, 1, "Failed to execute 'btoa'");
  const input = toDOMString(data);
  const bytes = new Uint8Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (c > 0xff) {
      throw new DOMException('The string to be encoded contains characters outside of the Latin1 range.', 'InvalidCharacterError');
    }
    bytes[i] = c;
  }
  return encodeBase64(bytes);
}
