// An outbound response body as the guest reads it: chunk by chunk, pulled only when the guest asks
// (undici pauses the socket and the decompressor meanwhile), so the host never holds more than a
// chunk of it. What it inflates to is bounded: a small compressed body can expand to gigabytes,
// and the decompression is work the host does for the guest.

export class DecompressedTooLarge extends TypeError {
  constructor(limit: number) {
    super(`fetch: the response body is larger than ${limit} bytes once decompressed (the limit for one subrequest)`);
  }
}

/** `source`'s chunks, counting bytes into `charge`; fails once more than `limit` have come. */
export async function* boundedBody(source: AsyncIterable<Uint8Array>, limit: number, charge: (bytes: number) => void): AsyncGenerator<Uint8Array, void, undefined> {
  let total = 0;
  for await (const chunk of source) {
    total += chunk.byteLength;
    if (total > limit) throw new DecompressedTooLarge(limit);
    charge(chunk.byteLength);
    yield chunk;
  }
}
