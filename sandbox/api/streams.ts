// WHATWG Streams. The classes are web-streams-polyfill's ponyfill (a port of the reference
// implementation, byte streams and ReadableStream.from included); on top of it this module adds
// the encoding streams, workerd's IdentityTransformStream and FixedLengthStream, and the few
// byte-stream helpers that bodies and Blob need.
import {
  ByteLengthQueuingStrategy,
  CountQueuingStrategy,
  ReadableByteStreamController,
  ReadableStream,
  ReadableStreamBYOBReader,
  ReadableStreamBYOBRequest,
  ReadableStreamDefaultController,
  ReadableStreamDefaultReader,
  TransformStream,
  TransformStreamDefaultController,
  WritableStream,
  WritableStreamDefaultController,
  WritableStreamDefaultWriter,
} from 'web-streams-polyfill';
import { TextDecoder, utf8Encode } from './encoding.js';
import { setToStringTag, toDictionary, toDOMString } from './idl.js';

export {
  ByteLengthQueuingStrategy,
  CountQueuingStrategy,
  ReadableByteStreamController,
  ReadableStream,
  ReadableStreamBYOBReader,
  ReadableStreamBYOBRequest,
  ReadableStreamDefaultController,
  ReadableStreamDefaultReader,
  TransformStream,
  TransformStreamDefaultController,
  WritableStream,
  WritableStreamDefaultController,
  WritableStreamDefaultWriter,
};

type BufferSource = ArrayBuffer | ArrayBufferView;

/** Chunk size used when a stream is made from bytes we already hold (bodies, Blob.stream()). */
const STREAM_CHUNK = 64 * 1024;

// --- helpers for bodies and blobs ----------------------------------------------------------------

/** Streams' "disturbed" flag (read from or cancelled). The polyfill keeps it as `_disturbed`;
 *  no public API exposes it, and Fetch needs it for bodyUsed. */
export function isDisturbed(stream: ReadableStream): boolean {
  return (stream as unknown as { _disturbed: boolean })._disturbed;
}

/** A byte stream (BYOB-capable, like workerd's bodies) over bytes we own. Chunks handed out are
 *  copies: a reader may keep or transfer them without affecting the source. */
export function streamFromBytes(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    type: 'bytes',
    pull(controller: ReadableByteStreamController) {
      if (offset >= bytes.length) {
        closeByteStream(controller);
        return;
      }
      const request = controller.byobRequest;
      if (request?.view) {
        // Fill the reader's own buffer: no intermediate chunk.
        const view = request.view as Uint8Array;
        const n = Math.min(view.byteLength, bytes.length - offset);
        new Uint8Array(view.buffer, view.byteOffset, n).set(bytes.subarray(offset, offset + n));
        offset += n;
        request.respond(n);
      } else {
        const end = Math.min(offset + STREAM_CHUNK, bytes.length);
        controller.enqueue(bytes.slice(offset, end));
        offset = end;
      }
      if (offset >= bytes.length) closeByteStream(controller);
    },
    cancel() {
      offset = bytes.length;
    },
  }) as ReadableStream<Uint8Array>;
}

function closeByteStream(controller: ReadableByteStreamController): void {
  controller.close();
  // A BYOB read still pending must be answered, with 0 bytes, once the stream is closed.
  controller.byobRequest?.respond(0);
}

/** The stream a body shows after it was consumed without one: closed and disturbed. */
export function consumedStream(): ReadableStream<Uint8Array> {
  const stream = new ReadableStream({ type: 'bytes', start: (c) => c.close() }) as ReadableStream<Uint8Array>;
  const reader = stream.getReader();
  void reader.read(); // marks it disturbed; on a closed stream this settles at once
  reader.releaseLock();
  return stream;
}

/** A chunk from a body stream as bytes. workerd accepts any BufferSource; strings are refused. */
function chunkBytes(chunk: unknown): Uint8Array {
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  throw new TypeError('This ReadableStream did not return bytes.');
}

/** Read a stream to its end and concatenate its chunks (Fetch "fully read"). With a `limit`,
 *  reading stops (and the stream is cancelled) as soon as more than `limit.bytes` arrived. */
export async function readAllBytes(stream: ReadableStream, limit?: { bytes: number; error(total: number): Error }): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const bytes = chunkBytes(value);
      chunks.push(bytes);
      total += bytes.length;
      if (limit && total > limit.bytes) throw limit.error(total);
    }
  } catch (error) {
    // A bad chunk must not leave the source running with nobody reading it.
    reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
  // One copy always: a chunk's buffer belongs to whoever enqueued it.
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

// --- TextEncoderStream / TextDecoderStream (WHATWG Encoding §7) ---------------------------------

export class TextEncoderStream {
  #transform: TransformStream<string, Uint8Array>;

  constructor() {
    // A lead surrogate at the end of a chunk waits for the next chunk to complete its pair.
    let pending = '';
    this.#transform = new TransformStream<string, Uint8Array>({
      transform(chunk, controller) {
        let text = pending + toDOMString(chunk);
        pending = '';
        const last = text.charCodeAt(text.length - 1);
        if (last >= 0xd800 && last <= 0xdbff) {
          pending = text.slice(-1);
          text = text.slice(0, -1);
        }
        if (text.length > 0) controller.enqueue(utf8Encode(text));
      },
      flush(controller) {
        if (pending) controller.enqueue(utf8Encode(pending)); // a lone surrogate: U+FFFD
      },
    });
  }

  get encoding(): string {
    return 'utf-8';
  }

  get readable(): ReadableStream<Uint8Array> {
    return this.#transform.readable;
  }

  get writable(): WritableStream<string> {
    return this.#transform.writable;
  }
}
setToStringTag(TextEncoderStream, 'TextEncoderStream');

export class TextDecoderStream {
  #decoder: TextDecoder;
  #transform: TransformStream<BufferSource, string>;

  constructor(label: unknown = 'utf-8', options: unknown = undefined) {
    const decoder = new TextDecoder(label, toDictionary(options, "Failed to construct 'TextDecoderStream'"));
    this.#decoder = decoder;
    this.#transform = new TransformStream<BufferSource, string>({
      transform(chunk, controller) {
        const text = decoder.decode(chunk, { stream: true });
        if (text) controller.enqueue(text);
      },
      flush(controller) {
        const text = decoder.decode();
        if (text) controller.enqueue(text);
      },
    });
  }

  get encoding(): string {
    return this.#decoder.encoding;
  }

  get fatal(): boolean {
    return this.#decoder.fatal;
  }

  get ignoreBOM(): boolean {
    return this.#decoder.ignoreBOM;
  }

  get readable(): ReadableStream<string> {
    return this.#transform.readable;
  }

  get writable(): WritableStream<BufferSource> {
    return this.#transform.writable;
  }
}
setToStringTag(TextDecoderStream, 'TextDecoderStream');

// --- workerd's byte-only transform streams -------------------------------------------------------

/** workerd's IdentityTransformStream: a TransformStream that passes bytes through and refuses
 *  anything else. (workerd also makes its readable side BYOB-capable; ours is a default stream.) */
export class IdentityTransformStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor() {
    super({
      transform(chunk, controller) {
        controller.enqueue(chunkBytes(chunk));
      },
    });
  }
}
setToStringTag(IdentityTransformStream, 'IdentityTransformStream');

/** workerd's FixedLengthStream: an identity byte stream that errors if the bytes written do not
 *  add up to exactly `expectedLength`. */
export class FixedLengthStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor(expectedLength: number | bigint) {
    const expected = Number(expectedLength);
    if (!Number.isSafeInteger(expected) || expected < 0) {
      throw new TypeError('FixedLengthStream requires a non-negative integer expected length.');
    }
    let written = 0;
    super({
      transform(chunk, controller) {
        const bytes = chunkBytes(chunk);
        written += bytes.length;
        if (written > expected) throw new TypeError('Attempt to write too many bytes through a FixedLengthStream.');
        controller.enqueue(bytes);
      },
      flush() {
        if (written < expected) throw new TypeError('FixedLengthStream did not see all expected bytes before close().');
      },
    });
  }
}
setToStringTag(FixedLengthStream, 'FixedLengthStream');
