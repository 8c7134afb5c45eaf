// node:string_decoder: the npm port of Node's own (its Buffer is node:buffer's). Node's write()
// and end() also take any TypedArray or DataView, which the port does not: they are viewed as a
// Buffer first.
import { StringDecoder as PortDecoder } from 'string_decoder';
import { Buffer } from './buffer.js';

const BufferClass = Buffer as { isBuffer(value: unknown): boolean; from(buffer: ArrayBufferLike, offset: number, length: number): unknown };

function asBuffer(value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !BufferClass.isBuffer(value)) return BufferClass.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value !== 'string' && !ArrayBuffer.isView(value) && value !== undefined) {
    throw Object.assign(new TypeError('The "buf" argument must be an instance of Buffer, TypedArray, or DataView.'), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  return value;
}

type Port = { write(buf: unknown): string; end(buf?: unknown): string };

export class StringDecoder extends (PortDecoder as new (encoding?: string) => Port) {
  constructor(encoding?: string) {
    super(encoding);
    // The port sets write/end on the instance for some encodings (hex, base64, ...): wrap what
    // this instance ended up with.
    const write = this.write;
    const end = this.end;
    Object.defineProperty(this, 'write', { value: (buf: unknown) => (typeof buf === 'string' ? buf : write.call(this, asBuffer(buf))), writable: true, configurable: true });
    Object.defineProperty(this, 'end', { value: (buf?: unknown) => end.call(this, buf === undefined ? undefined : asBuffer(buf)), writable: true, configurable: true });
  }
}

export default { StringDecoder };
