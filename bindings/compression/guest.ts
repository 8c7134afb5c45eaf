// CompressionStream and DecompressionStream (WHATWG Compression): gzip, deflate, deflate-raw.
// The work is done by the host's zlib (bindings/compression/host.ts), chunk by chunk: a JS
// inflate/deflate would add tens of KB to every isolate for something most workers never use.
import { hostCall } from '../../sandbox/bridge.js';
import { OPS } from '../../protocol/wall.js';
import { TransformStream, type ReadableStream, type WritableStream } from '../../sandbox/api/streams.js';
import { setToStringTag } from '../../sandbox/api/idl.js';

type BufferSource = ArrayBuffer | ArrayBufferView;

const FORMATS = new Set(['gzip', 'deflate', 'deflate-raw']);
let nextCodecId = 1;

function toBytes(chunk: unknown, what: string): Uint8Array {
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`${what}: chunks must be an ArrayBuffer or ArrayBufferView`);
}

function copyOut(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function codec(mode: 'compress' | 'decompress', format: unknown, what: string): TransformStream<BufferSource, Uint8Array> {
  const name = String(format);
  if (!FORMATS.has(name)) throw new TypeError(`${what}: unsupported format "${name}" (expected gzip, deflate or deflate-raw)`);
  const id = nextCodecId++;
  const emit = (controller: { enqueue(chunk: Uint8Array): void }, outputs: ArrayBuffer[]) => {
    for (const output of outputs) if (output.byteLength) controller.enqueue(new Uint8Array(output));
  };
  return new TransformStream<BufferSource, Uint8Array>({
    async transform(chunk, controller) {
      const bytes = toBytes(chunk, what);
      if (!bytes.byteLength) return;
      emit(controller, await hostCall<ArrayBuffer[]>(OPS.compression, 'write', id, mode, name, copyOut(bytes)));
    },
    async flush(controller) {
      emit(controller, await hostCall<ArrayBuffer[]>(OPS.compression, 'end', id, mode, name));
    },
  });
}

export class CompressionStream {
  #transform: TransformStream<BufferSource, Uint8Array>;
  constructor(format: unknown) {
    if (arguments.length < 1) throw new TypeError("Failed to construct 'CompressionStream': 1 argument required.");
    this.#transform = codec('compress', format, 'CompressionStream');
  }
  get readable(): ReadableStream<Uint8Array> {
    return this.#transform.readable;
  }
  get writable(): WritableStream<BufferSource> {
    return this.#transform.writable;
  }
}
setToStringTag(CompressionStream, 'CompressionStream');

export class DecompressionStream {
  #transform: TransformStream<BufferSource, Uint8Array>;
  constructor(format: unknown) {
    if (arguments.length < 1) throw new TypeError("Failed to construct 'DecompressionStream': 1 argument required.");
    this.#transform = codec('decompress', format, 'DecompressionStream');
  }
  get readable(): ReadableStream<Uint8Array> {
    return this.#transform.readable;
  }
  get writable(): WritableStream<BufferSource> {
    return this.#transform.writable;
  }
}
setToStringTag(DecompressionStream, 'DecompressionStream');
