// A host-side byte source (an upload still arriving, an outbound fetch's body) as a guest
// ReadableStream. Each pull asks the host for the next chunk with the `body.read` op.
import { hostCall } from './bridge.js';
import { ReadableStream, isDisturbed } from './api/streams.js';
import { OPS } from '../protocol/wall.js';

// Host streams by their guest stream, so that one passed on untouched (`fetch(url, { body:
// request.body })`, `return fetch(...)`) can be piped host to host without crossing the wall.
const hostIds = new WeakMap<ReadableStream, number>();

/** The host stream id behind `stream`, if it is one and nobody has read from it yet. */
export function untouchedHostStream(stream: ReadableStream): number | undefined {
  const id = hostIds.get(stream);
  if (id === undefined || stream.locked || isDisturbed(stream)) return undefined;
  hostIds.delete(stream);
  return id;
}

export function hostByteStream(id: number): ReadableStream<Uint8Array> {
  const stream = new ReadableStream<Uint8Array>({
    type: 'bytes',
    async pull(controller) {
      // Empty chunks carry nothing; keep asking until there is data or the end.
      for (;;) {
        const chunk = await hostCall<ArrayBuffer | null>(OPS.bodyRead, id);
        if (chunk === null) {
          controller.close();
          // A reader waiting in BYOB mode must be released explicitly once the stream closes.
          controller.byobRequest?.respond(0);
          return;
        }
        if (chunk.byteLength) {
          controller.enqueue(new Uint8Array(chunk));
          return;
        }
      }
    },
  });
  hostIds.set(stream, id);
  return stream;
}
