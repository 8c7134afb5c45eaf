// node:buffer on the `buffer` npm package (feross/buffer, the one browserify and most bundlers
// use), with what workerd's Buffer has beyond it: the base64url encoding, and the module's Web
// exports (Blob, File, atob, btoa) taken from the sandbox's globals.
import { TextDecoder } from './web.js';
import * as npmBuffer from 'buffer';

const NpmBuffer = npmBuffer.Buffer as unknown as BufferClass;

interface BufferClass {
  (...args: unknown[]): unknown;
  new (...args: unknown[]): BufferInstance;
  prototype: BufferInstance;
  from(value: unknown, encodingOrOffset?: unknown, length?: unknown): BufferInstance;
  byteLength(value: unknown, encoding?: unknown): number;
  isEncoding(encoding: unknown): boolean;
  alloc(size: number, fill?: unknown, encoding?: unknown): BufferInstance;
}
interface BufferInstance extends Uint8Array {
  toString(encoding?: unknown, start?: number, end?: number): string;
  write(value: string, offset?: unknown, length?: unknown, encoding?: unknown): number;
  fill(value: unknown, offset?: unknown, end?: unknown, encoding?: unknown): this;
}

// base64url: the package's base64 decoder already accepts '-' and '_', so decoding is base64's;
// encoding is base64's output with the two characters swapped and the padding dropped.
const isBase64Url = (encoding: unknown) => typeof encoding === 'string' && encoding.toLowerCase() === 'base64url';
const toUrl = (base64: string) => base64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

const from = NpmBuffer.from;
NpmBuffer.from = function (value: unknown, encodingOrOffset?: unknown, length?: unknown) {
  return from.call(this, value, isBase64Url(encodingOrOffset) ? 'base64' : encodingOrOffset, length);
};
const byteLength = NpmBuffer.byteLength;
NpmBuffer.byteLength = function (value: unknown, encoding?: unknown) {
  return byteLength.call(this, value, isBase64Url(encoding) ? 'base64' : encoding);
};
const isEncoding = NpmBuffer.isEncoding;
NpmBuffer.isEncoding = function (encoding: unknown) {
  return isBase64Url(encoding) || isEncoding.call(this, encoding);
};
const alloc = NpmBuffer.alloc;
NpmBuffer.alloc = function (size: number, fill?: unknown, encoding?: unknown) {
  return alloc.call(this, size, fill, isBase64Url(encoding) ? 'base64' : encoding);
};
const proto = NpmBuffer.prototype;
const toString = proto.toString;
proto.toString = function (this: BufferInstance, encoding?: unknown, start?: number, end?: number) {
  if (isBase64Url(encoding)) return toUrl(toString.call(this, 'base64', start, end));
  // eslint-disable-next-line prefer-rest-params
  return toString.apply(this, arguments as unknown as [unknown, number, number]);
};
const write = proto.write;
proto.write = function (this: BufferInstance, value: string, offset?: unknown, length?: unknown, encoding?: unknown) {
  if (isBase64Url(offset)) return write.call(this, value, 'base64');
  if (isBase64Url(length)) return write.call(this, value, offset, 'base64');
  if (isBase64Url(encoding)) return write.call(this, value, offset, length, 'base64');
  // eslint-disable-next-line prefer-rest-params
  return write.apply(this, arguments as unknown as [string]);
};
const fill = proto.fill;
proto.fill = function (this: BufferInstance, value: unknown, offset?: unknown, end?: unknown, encoding?: unknown) {
  if (isBase64Url(offset)) return fill.call(this, value, 'base64');
  if (isBase64Url(end)) return fill.call(this, value, offset, 'base64');
  if (isBase64Url(encoding)) return fill.call(this, value, offset, end, 'base64');
  // eslint-disable-next-line prefer-rest-params
  return fill.apply(this, arguments as unknown as [unknown]);
};

// Node's equals() and compare() take any Uint8Array; the package's only a Buffer.
const isNpmBuffer = (value: unknown) => (NpmBuffer as unknown as { isBuffer(v: unknown): boolean }).isBuffer(value);
const asBuffer = (value: unknown) =>
  value instanceof Uint8Array && !isNpmBuffer(value) ? NpmBuffer.from(value.buffer, value.byteOffset, value.byteLength) : value;
const equals = (proto as unknown as { equals: (other: unknown) => boolean }).equals;
(proto as unknown as { equals: (other: unknown) => boolean }).equals = function (this: BufferInstance, other: unknown) {
  return equals.call(this, asBuffer(other));
};
const compare = (proto as unknown as { compare: (...args: unknown[]) => number }).compare;
(proto as unknown as { compare: (...args: unknown[]) => number }).compare = function (this: BufferInstance, target: unknown, ...rest: unknown[]) {
  return compare.call(this, asBuffer(target), ...rest);
};

export const Buffer = npmBuffer.Buffer;
export const SlowBuffer = npmBuffer.SlowBuffer;
export const kMaxLength = npmBuffer.kMaxLength;
/** V8's longest string (2^29 - 24 on 64-bit), as Node reports it. */
export const kStringMaxLength = 536870888;
export const constants = Object.freeze({ MAX_LENGTH: npmBuffer.kMaxLength, MAX_STRING_LENGTH: kStringMaxLength });
export const INSPECT_MAX_BYTES = npmBuffer.INSPECT_MAX_BYTES;

const g = globalThis as unknown as Record<string, unknown>;
export const Blob = g.Blob;
export const File = g.File;
export const atob = g.atob;
export const btoa = g.btoa;

function bytesOf(input: unknown): Uint8Array {
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError('The "input" argument must be an instance of ArrayBuffer, Buffer, TypedArray or DataView');
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether the bytes are valid UTF-8. */
export function isUtf8(input: unknown): boolean {
  try {
    fatalUtf8.decode(bytesOf(input));
    return true;
  } catch {
    return false;
  }
}

/** Whether every byte is ASCII (< 0x80). */
export function isAscii(input: unknown): boolean {
  const bytes = bytesOf(input);
  for (let i = 0; i < bytes.length; i++) if (bytes[i] > 0x7f) return false;
  return true;
}

export default { Buffer, SlowBuffer, kMaxLength, kStringMaxLength, constants, INSPECT_MAX_BYTES, Blob, File, atob, btoa, isUtf8, isAscii };
