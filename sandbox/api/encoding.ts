// WHATWG Encoding: TextEncoder, TextDecoder, and the fast UTF-8 helpers the rest of the sandbox
// uses on the request path (bodies, headers, URLs). Plain V8 has none of this, so it is all here.
//
// Snapshot rule: nothing at module top level may create a typed array; the scratch buffer below
// is allocated on first use.
import { intrinsics, passes, typedArrayName } from './brand.js';
import { setToStringTag, toDictionary, toDOMString } from './idl.js';

// Turning code units into a string is the hot part of every decode. Measured in an isolate (V8
// 11.3): one String.fromCharCode.apply is fastest for short input; from a few hundred units up to
// ~64K, calls of 16 explicit arguments win (apply over a subarray has a high fixed cost); beyond
// that the rope of 16-char pieces gets expensive to flatten, so large input goes through apply in
// 2K chunks. Each apply argument takes a stack slot, which also caps the chunk size.
const APPLY_MAX = 256;
const GROUPED_MAX = 0x10000;
const CHUNK = 0x800;

// Reused output buffer for decodes that fit in it: avoids allocating on every small body.
const SCRATCH_UNITS = 0x4000;
let scratch: Uint16Array | null = null;

function outputBuffer(units: number): Uint16Array {
  if (units > SCRATCH_UNITS) return new Uint16Array(units);
  return (scratch ??= new Uint16Array(SCRATCH_UNITS));
}

const fromCharCode = String.fromCharCode;

/** Code units (or Latin-1 bytes) to a string; never one concatenation per character. */
function unitsToString(u: Uint16Array | Uint8Array, length: number): string {
  if (length <= APPLY_MAX) return fromCharCode.apply(null, u.subarray(0, length) as unknown as number[]);
  let out = '';
  if (length <= GROUPED_MAX) {
    let i = 0;
    for (; i + 16 <= length; i += 16) {
      out += fromCharCode(u[i], u[i + 1], u[i + 2], u[i + 3], u[i + 4], u[i + 5], u[i + 6], u[i + 7],
        u[i + 8], u[i + 9], u[i + 10], u[i + 11], u[i + 12], u[i + 13], u[i + 14], u[i + 15]);
    }
    if (i < length) out += fromCharCode.apply(null, u.subarray(i, length) as unknown as number[]);
    return out;
  }
  for (let i = 0; i < length; i += CHUNK) {
    out += fromCharCode.apply(null, u.subarray(i, Math.min(i + CHUNK, length)) as unknown as number[]);
  }
  return out;
}

/** Bytes as a "binary string" (one char per byte). Also what atob/btoa and Latin-1 need. */
export function latin1Decode(bytes: Uint8Array): string {
  return unitsToString(bytes, bytes.length);
}

// --- UTF-8 encode ------------------------------------------------------------------------------

/** Bytes the UTF-8 form of input[start..] takes; lone surrogates count as U+FFFD (3 bytes). */
function utf8Length(input: string, start: number): number {
  let size = start;
  const length = input.length;
  for (let i = start; i < length; i++) {
    const c = input.charCodeAt(i);
    if (c < 0x80) size += 1;
    else if (c < 0x800) size += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < length && (input.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      size += 4;
      i++;
    } else size += 3;
  }
  return size;
}

/** Writes input[start..] as UTF-8 into out at pos (out must be large enough). */
function writeUtf8(input: string, start: number, out: Uint8Array, pos: number): number {
  const length = input.length;
  for (let i = start; i < length; i++) {
    let c = input.charCodeAt(i);
    if (c < 0x80) {
      out[pos++] = c;
    } else if (c < 0x800) {
      out[pos++] = 0xc0 | (c >> 6);
      out[pos++] = 0x80 | (c & 0x3f);
    } else {
      if ((c & 0xf800) === 0xd800) {
        const next = i + 1 < length ? input.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && (next & 0xfc00) === 0xdc00) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          out[pos++] = 0xf0 | (c >> 18);
          out[pos++] = 0x80 | ((c >> 12) & 0x3f);
          out[pos++] = 0x80 | ((c >> 6) & 0x3f);
          out[pos++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd; // lone surrogate: USVString conversion turns it into U+FFFD
      }
      out[pos++] = 0xe0 | (c >> 12);
      out[pos++] = 0x80 | ((c >> 6) & 0x3f);
      out[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

/** UTF-8 encode (lone surrogates become U+FFFD). One pass for ASCII, which is most input. */
export function utf8Encode(input: string): Uint8Array {
  const length = input.length;
  let out = new Uint8Array(length);
  let i = 0;
  for (; i < length; i++) {
    const c = input.charCodeAt(i);
    if (c >= 0x80) break;
    out[i] = c;
  }
  if (i === length) return out;
  const ascii = out;
  out = new Uint8Array(utf8Length(input, i));
  out.set(ascii.subarray(0, i));
  writeUtf8(input, i, out, i);
  return out;
}

// --- UTF-8 decode ------------------------------------------------------------------------------

/** The Encoding spec's UTF-8 decoder, as a resumable state machine (for `{stream: true}`). */
class Utf8Decoder {
  private needed = 0;
  private seen = 0;
  private codePoint = 0;
  private lower = 0x80;
  private upper = 0xbf;

  idle(): boolean {
    return this.needed === 0;
  }

  reset(): void {
    this.needed = this.seen = this.codePoint = 0;
    this.lower = 0x80;
    this.upper = 0xbf;
  }

  /** Decodes bytes into code units; `flush` ends the stream (a pending sequence is an error).
   *  Returns the number of units written, or -1 on the first error when `fatal`. */
  run(bytes: Uint8Array, out: Uint16Array, flush: boolean, fatal: boolean): number {
    let { needed, seen, codePoint, lower, upper } = this;
    let n = 0;
    const length = bytes.length;
    let i = 0;
    while (i < length) {
      const byte = bytes[i];
      if (needed === 0) {
        if (byte < 0x80) {
          out[n++] = byte;
          i++;
          // Tight loop over the ASCII run that usually follows.
          while (i < length && bytes[i] < 0x80) out[n++] = bytes[i++];
          continue;
        }
        i++;
        if (byte >= 0xc2 && byte <= 0xdf) {
          needed = 1;
          codePoint = byte & 0x1f;
        } else if (byte >= 0xe0 && byte <= 0xef) {
          if (byte === 0xe0) lower = 0xa0; // no overlong 3-byte forms
          if (byte === 0xed) upper = 0x9f; // no surrogates
          needed = 2;
          codePoint = byte & 0xf;
        } else if (byte >= 0xf0 && byte <= 0xf4) {
          if (byte === 0xf0) lower = 0x90; // no overlong 4-byte forms
          if (byte === 0xf4) upper = 0x8f; // nothing above U+10FFFF
          needed = 3;
          codePoint = byte & 0x7;
        } else {
          if (fatal) return this.fail();
          out[n++] = 0xfffd;
        }
        continue;
      }
      if (byte < lower || byte > upper) {
        // The spec resets and "prepends" the byte: it is processed again as a lead byte, so an
        // incomplete sequence costs exactly one U+FFFD (its "maximal subpart").
        needed = seen = codePoint = 0;
        lower = 0x80;
        upper = 0xbf;
        if (fatal) return this.fail();
        out[n++] = 0xfffd;
        continue;
      }
      i++;
      lower = 0x80;
      upper = 0xbf;
      codePoint = (codePoint << 6) | (byte & 0x3f);
      if (++seen !== needed) continue;
      if (codePoint > 0xffff) {
        codePoint -= 0x10000;
        out[n++] = 0xd800 | (codePoint >> 10);
        out[n++] = 0xdc00 | (codePoint & 0x3ff);
      } else {
        out[n++] = codePoint;
      }
      needed = seen = codePoint = 0;
    }
    if (flush && needed !== 0) {
      needed = seen = codePoint = 0;
      lower = 0x80;
      upper = 0xbf;
      if (fatal) return this.fail();
      out[n++] = 0xfffd;
    }
    this.needed = needed;
    this.seen = seen;
    this.codePoint = codePoint;
    this.lower = lower;
    this.upper = upper;
    return n;
  }

  private fail(): -1 {
    this.reset();
    return -1;
  }
}

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] >= 0x80) return false;
  return true;
}

/** UTF-8 decode without BOM handling, replacing errors with U+FFFD. */
export function utf8DecodeWithoutBOM(bytes: Uint8Array): string {
  if (isAscii(bytes)) return unitsToString(bytes, bytes.length);
  // At most one unit per byte (4-byte sequences give 2 units) plus one for a dangling sequence.
  const out = outputBuffer(bytes.length + 1);
  const n = new Utf8Decoder().run(bytes, out, true, false);
  return unitsToString(out, n);
}

/** The spec's "UTF-8 decode": strips one leading BOM, replaces errors with U+FFFD. This is what
 *  Body.text()/json() and a default TextDecoder do. */
export function utf8Decode(bytes: Uint8Array): string {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    bytes = bytes.subarray(3);
  }
  return utf8DecodeWithoutBOM(bytes);
}

// --- UTF-16 and single-byte decoders -----------------------------------------------------------

/** The spec's shared UTF-16 decoder (LE or BE), resumable across chunks. */
class Utf16Decoder {
  private leadByte = -1;
  private leadSurrogate = -1;
  constructor(private readonly bigEndian: boolean) {}

  idle(): boolean {
    return this.leadByte < 0 && this.leadSurrogate < 0;
  }

  reset(): void {
    this.leadByte = this.leadSurrogate = -1;
  }

  run(bytes: Uint8Array, out: Uint16Array, flush: boolean, fatal: boolean): number {
    let { leadByte, leadSurrogate } = this;
    let n = 0;
    for (let i = 0; i < bytes.length; i++) {
      if (leadByte < 0) {
        leadByte = bytes[i];
        continue;
      }
      const unit = this.bigEndian ? (leadByte << 8) | bytes[i] : leadByte | (bytes[i] << 8);
      leadByte = -1;
      if (leadSurrogate >= 0) {
        const lead = leadSurrogate;
        leadSurrogate = -1;
        if (unit >= 0xdc00 && unit <= 0xdfff) {
          out[n++] = lead;
          out[n++] = unit;
          continue;
        }
        // Lone lead surrogate: error, then the unit is processed afresh (spec "prepend").
        if (fatal) return this.fail();
        out[n++] = 0xfffd;
      }
      if (unit >= 0xd800 && unit <= 0xdbff) leadSurrogate = unit;
      else if (unit >= 0xdc00 && unit <= 0xdfff) {
        if (fatal) return this.fail();
        out[n++] = 0xfffd;
      } else out[n++] = unit;
    }
    if (flush && (leadByte >= 0 || leadSurrogate >= 0)) {
      leadByte = leadSurrogate = -1;
      if (fatal) return this.fail();
      out[n++] = 0xfffd;
    }
    this.leadByte = leadByte;
    this.leadSurrogate = leadSurrogate;
    return n;
  }

  private fail(): -1 {
    this.reset();
    return -1;
  }
}

// windows-1252 differs from Latin-1 only in 0x80..0x9F (the Encoding spec's index).
const WINDOWS_1252_HIGH =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';

class SingleByteDecoder {
  constructor(private readonly userDefined: boolean) {}
  idle(): boolean {
    return true;
  }
  reset(): void {}
  run(bytes: Uint8Array, out: Uint16Array, _flush?: boolean, _fatal?: boolean): number {
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b < 0x80) out[i] = b;
      // x-user-defined maps high bytes into the Private Use Area at U+F780.
      else if (this.userDefined) out[i] = 0xf700 + b;
      else out[i] = b < 0xa0 ? WINDOWS_1252_HIGH.charCodeAt(b - 0x80) : b;
    }
    return bytes.length;
  }
}

type Decoder = Utf8Decoder | Utf16Decoder | SingleByteDecoder;

// --- labels ------------------------------------------------------------------------------------

type EncodingName = 'utf-8' | 'utf-16le' | 'utf-16be' | 'windows-1252' | 'x-user-defined';

// The Encoding spec's labels for the encodings Cinder decodes. Every other label (legacy CJK and
// single-byte encodings, "replacement") makes the TextDecoder constructor throw a RangeError.
const LABELS: Record<EncodingName, string> = {
  'utf-8': 'unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8',
  'utf-16le': 'csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le',
  'utf-16be': 'unicodefffe utf-16be',
  'windows-1252':
    'ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 iso8859-1 iso88591 ' +
    'iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252',
  'x-user-defined': 'x-user-defined',
};

let labelTable: Map<string, EncodingName> | null = null;

/** "Get an encoding": trim ASCII whitespace, ASCII-lowercase, look up. */
export function encodingForLabel(label: string): EncodingName | null {
  if (!labelTable) {
    labelTable = new Map();
    for (const name of Object.keys(LABELS) as EncodingName[]) {
      for (const l of LABELS[name].split(' ')) labelTable.set(l, name);
    }
  }
  // Only ASCII letters fold: String#toLowerCase would also fold e.g. U+212A KELVIN SIGN to "k".
  const key = label.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, '').replace(/[A-Z]+/g, (s) => s.toLowerCase());
  return labelTable.get(key) ?? null;
}

function newDecoder(encoding: EncodingName): Decoder {
  switch (encoding) {
    case 'utf-8':
      return new Utf8Decoder();
    case 'utf-16le':
      return new Utf16Decoder(false);
    case 'utf-16be':
      return new Utf16Decoder(true);
    default:
      return new SingleByteDecoder(encoding === 'x-user-defined');
  }
}

// --- WebIDL helpers ----------------------------------------------------------------------------

/** A (Allow)SharedBufferSource as bytes, without copying; TypeError for anything else. */
export function bufferSourceBytes(value: unknown, context: string): Uint8Array {
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (passes(intrinsics.bufferByteLength, value) || passes(intrinsics.sharedBufferByteLength, value)) {
    return new Uint8Array(value as ArrayBuffer);
  }
  throw new TypeError(`${context}: parameter 1 is not of type 'ArrayBuffer or ArrayBufferView'.`);
}

// --- TextEncoder -------------------------------------------------------------------------------

export class TextEncoder {
  get encoding(): 'utf-8' {
    return 'utf-8';
  }

  encode(input: unknown = ''): Uint8Array {
    return utf8Encode(toDOMString(input));
  }

  /** Writes as many whole code points as fit; `read` counts UTF-16 code units consumed. */
  encodeInto(source: unknown, destination: unknown): { read: number; written: number } {
    const input = toDOMString(source);
    if (typedArrayName(destination) !== 'Uint8Array') {
      throw new TypeError("Failed to execute 'encodeInto' on 'TextEncoder': parameter 2 is not of type 'Uint8Array'.");
    }
    const out = destination as Uint8Array;
    const capacity = out.length;
    let read = 0;
    let pos = 0;
    const length = input.length;
    while (read < length) {
      let c = input.charCodeAt(read);
      if (c < 0x80) {
        if (pos >= capacity) break;
        out[pos++] = c;
        read++;
        continue;
      }
      let units = 1;
      if ((c & 0xf800) === 0xd800) {
        const next = read + 1 < length ? input.charCodeAt(read + 1) : 0;
        if (c <= 0xdbff && (next & 0xfc00) === 0xdc00) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          units = 2;
        } else c = 0xfffd;
      }
      const size = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      if (pos + size > capacity) break;
      if (size === 2) {
        out[pos++] = 0xc0 | (c >> 6);
      } else if (size === 3) {
        out[pos++] = 0xe0 | (c >> 12);
        out[pos++] = 0x80 | ((c >> 6) & 0x3f);
      } else {
        out[pos++] = 0xf0 | (c >> 18);
        out[pos++] = 0x80 | ((c >> 12) & 0x3f);
        out[pos++] = 0x80 | ((c >> 6) & 0x3f);
      }
      out[pos++] = 0x80 | (c & 0x3f);
      read += units;
    }
    return { read, written: pos };
  }

}
setToStringTag(TextEncoder, 'TextEncoder');

// --- TextDecoder -------------------------------------------------------------------------------

export class TextDecoder {
  #encoding: EncodingName;
  #fatal: boolean;
  #ignoreBOM: boolean;
  #decoder: Decoder;
  #doNotFlush = false;
  #bomSeen = false;

  constructor(label: unknown = 'utf-8', options: unknown = undefined) {
    const name = toDOMString(label);
    const opts = toDictionary(options, "Failed to construct 'TextDecoder'");
    // WebIDL dictionary members are read in lexicographic order.
    const fatal = Boolean(opts.fatal);
    const ignoreBOM = Boolean(opts.ignoreBOM);
    const encoding = encodingForLabel(name);
    if (!encoding) {
      throw new RangeError(`Failed to construct 'TextDecoder': The encoding label provided ('${name}') is invalid.`);
    }
    this.#encoding = encoding;
    this.#fatal = fatal;
    this.#ignoreBOM = ignoreBOM;
    this.#decoder = newDecoder(encoding);
  }

  get encoding(): string {
    return this.#encoding;
  }

  get fatal(): boolean {
    return this.#fatal;
  }

  get ignoreBOM(): boolean {
    return this.#ignoreBOM;
  }

  decode(input: unknown = undefined, options: unknown = undefined): string {
    const bytes = input === undefined ? new Uint8Array(0) : bufferSourceBytes(input, "Failed to execute 'decode' on 'TextDecoder'");
    const stream = Boolean(toDictionary(options, "Failed to execute 'decode' on 'TextDecoder'").stream);
    if (!this.#doNotFlush) {
      this.#decoder.reset();
      this.#bomSeen = false;
    }
    this.#doNotFlush = stream;

    // The common case, a one-shot ASCII body, skips the state machine (same result).
    let text =
      this.#encoding === 'utf-8' && this.#decoder.idle() && isAscii(bytes)
        ? unitsToString(bytes, bytes.length)
        : this.#runDecoder(bytes, !stream);

    // The BOM is stripped once per stream, from the first code point the stream produces.
    if (!this.#ignoreBOM && !this.#bomSeen && text.length > 0 && this.#unicode()) {
      this.#bomSeen = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return text;
  }

  #unicode(): boolean {
    return this.#encoding === 'utf-8' || this.#encoding === 'utf-16le' || this.#encoding === 'utf-16be';
  }

  #runDecoder(bytes: Uint8Array, flush: boolean): string {
    // Each byte gives at most one unit, plus two for state carried in from the previous chunk
    // (a UTF-8 sequence completing as a surrogate pair, or an error flushed at the end).
    const out = outputBuffer(bytes.length + 3);
    const n = this.#decoder.run(bytes, out, flush, this.#fatal);
    if (n < 0) {
      this.#doNotFlush = false;
      throw new TypeError(`Failed to execute 'decode' on 'TextDecoder': The encoded data was not valid for encoding ${this.#encoding}`);
    }
    return unitsToString(out, n);
  }

}
setToStringTag(TextDecoder, 'TextDecoder');
