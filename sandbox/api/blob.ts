// Blob and File (W3C File API). A Blob holds one immutable byte array: parts are concatenated
// once at construction, and slice() shares the parent's bytes instead of copying them. Every read
// (arrayBuffer/bytes/stream) hands out a copy, so nothing a caller does can change a Blob.
import { utf8Decode, utf8Encode } from './encoding.js';
import { enumerableMembers, toUSVString } from './fetch-idl.js';
import { requireArgs, setToStringTag, toDictionary } from './idl.js';
import { streamFromBytes, type ReadableStream } from './streams.js';

export type BlobPart = ArrayBuffer | ArrayBufferView | Blob | string;

// Module-private read access to a Blob's bytes (set in the static block): no copy.
let bytesOf: (blob: Blob) => Uint8Array;
let setContents: (blob: Blob, bytes: Uint8Array, type: string) => void;

export class Blob {
  #bytes: Uint8Array;
  #type: string;

  constructor(blobParts?: Iterable<BlobPart>, options?: { type?: string; endings?: 'transparent' | 'native' }) {
    const parts = blobParts === undefined ? [] : toSequence(blobParts, "Failed to construct 'Blob'");
    const opts = toDictionary(options, "Failed to construct 'Blob'");
    // WebIDL reads dictionary members in lexicographic order: endings, then type.
    const endings = opts.endings === undefined ? 'transparent' : toUSVString(opts.endings);
    if (endings !== 'transparent' && endings !== 'native') {
      throw new TypeError(`Failed to construct 'Blob': The provided value '${endings}' is not a valid enum value of type EndingType.`);
    }
    const type = opts.type === undefined ? '' : `${opts.type as string}`;
    this.#bytes = concatParts(parts, endings === 'native');
    this.#type = normalizeType(type);
  }

  get size(): number {
    return this.#bytes.length;
  }

  get type(): string {
    return this.#type;
  }

  slice(start?: number, end?: number, contentType?: string): Blob {
    const size = this.#bytes.length;
    const from = relativeIndex(start, 0, size);
    const to = relativeIndex(end, size, size);
    return createBlob(this.#bytes.subarray(from, Math.max(from, to)), contentType === undefined ? '' : normalizeType(`${contentType}`));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.#bytes.slice().buffer;
  }

  async bytes(): Promise<Uint8Array> {
    return this.#bytes.slice();
  }

  async text(): Promise<string> {
    return utf8Decode(this.#bytes);
  }

  stream(): ReadableStream<Uint8Array> {
    return streamFromBytes(this.#bytes);
  }

  static {
    bytesOf = (blob) => blob.#bytes;
    setContents = (blob, bytes, type) => {
      blob.#bytes = bytes;
      blob.#type = type;
    };
  }
}

enumerableMembers(Blob);
setToStringTag(Blob, 'Blob');

export class File extends Blob {
  #name: string;
  #lastModified: number;

  constructor(fileBits: Iterable<BlobPart>, fileName: string, options?: { type?: string; endings?: 'transparent' | 'native'; lastModified?: number }) {
    requireArgs(arguments.length, 2, "Failed to construct 'File'");
    super(fileBits, options);
    this.#name = toUSVString(fileName);
    const lastModified = toDictionary(options, "Failed to construct 'File'").lastModified;
    // WebIDL long long: ToNumber, truncate; NaN and infinities become 0.
    const ms = lastModified === undefined ? Date.now() : Math.trunc(Number(lastModified));
    this.#lastModified = Number.isFinite(ms) ? ms : 0;
  }

  get name(): string {
    return this.#name;
  }

  get lastModified(): number {
    return this.#lastModified;
  }
}

enumerableMembers(File);
setToStringTag(File, 'File');

/** A Blob over bytes the caller hands over (no copy) with a type used as is (Body.blob() gives
 *  the serialized MIME type, whose parameter values keep their case). */
export function createBlob(bytes: Uint8Array, type: string): Blob {
  const blob = new Blob();
  setContents(blob, bytes, type);
  return blob;
}

/** A Blob's bytes without copying. Callers must not write to them. */
export function blobBytes(blob: Blob): Uint8Array {
  return bytesOf(blob);
}

function toSequence(value: unknown, context: string): unknown[] {
  if ((typeof value !== 'object' || value === null) && typeof value !== 'function') {
    throw new TypeError(`${context}: The provided value cannot be converted to a sequence.`);
  }
  if (typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') {
    throw new TypeError(`${context}: The object must have a callable @@iterator property.`);
  }
  return [...(value as Iterable<unknown>)];
}

function concatParts(parts: unknown[], nativeEndings: boolean): Uint8Array {
  // A single Blob part (new File([blob], ...), FormData entries) shares its immutable bytes.
  if (parts.length === 1 && parts[0] instanceof Blob) return bytesOf(parts[0]);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (const part of parts) {
    let bytes: Uint8Array;
    if (part instanceof Blob) bytes = bytesOf(part);
    else if (ArrayBuffer.isView(part)) bytes = new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
    else if (part instanceof ArrayBuffer) bytes = new Uint8Array(part);
    else {
      let text = toUSVString(part);
      // "native" line endings are LF here (a Linux host), as in workerd.
      if (nativeEndings) text = text.replace(/\r\n?/g, '\n');
      bytes = utf8Encode(text);
    }
    chunks.push(bytes);
    total += bytes.length;
  }
  // Always a fresh array, even for one part: the caller keeps its own buffer and may change it.
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** File API: a type with anything outside U+0020..U+007E is dropped; otherwise lowercased. */
function normalizeType(type: string): string {
  return /[^\x20-\x7e]/.test(type) ? '' : type.toLowerCase();
}

/** slice()'s index rule: negative counts from the end; clamped to [0, size]. */
function relativeIndex(value: number | undefined, fallback: number, size: number): number {
  if (value === undefined) return fallback;
  // WebIDL long long: ToNumber then truncate (NaN -> 0).
  const n = Math.trunc(Number(value)) || 0;
  return n < 0 ? Math.max(size + n, 0) : Math.min(n, size);
}
