// A host-side byte source (an upload still arriving, an outbound fetch's body) as a guest
// ReadableStream. Each pull asks the host for the next chunk with the `body.read` op.
import { hostCall } from './bridge.js';
import { ReadableStream } from './api/streams.js';

export function hostByteStream(id: number): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    type: 'bytes',
    async pull(controller) {
      // Empty chunks carry nothing; keep asking until there is data or the end.
      for (;;) {
        const chunk = await hostCall<ArrayBuffer | null>('body.read', id);
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
}
