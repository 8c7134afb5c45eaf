// Bodies that cross the wall as streams, host side. Host streams (uploads still arriving, outbound
// fetch and service-call bodies) are registered by id for the guest to read with OPS.bodyRead;
// each belongs to an invocation and is closed when that invocation ends. Guest streams (response
// bodies, outbound request bodies) are pulled from the guest with its pullStream entry.
import type { PulledChunk } from '../../protocol/wall.js';
import type { Invocation } from './invocation.js';
import type { GuestEntry } from './ready-isolate.js';

export class HostStreams {
  private readonly streams = new Map<number, { owner: Invocation | undefined; iterator: AsyncIterator<Uint8Array | string> }>();
  private nextId = 1;

  /** `body` may yield strings (another invocation's streamed response does): sent as UTF-8. */
  open(owner: Invocation | undefined, body: AsyncIterable<Uint8Array | string>): number {
    const id = this.nextId++;
    this.streams.set(id, { owner, iterator: body[Symbol.asyncIterator]() });
    return id;
  }

  /** Hand a host stream over whole (the guest passed it on unread): it leaves the registry, so
   *  ending the invocation no longer closes it; whoever takes it reads it to the end. */
  take(id: number): AsyncIterable<Uint8Array> {
    const stream = this.streams.get(id);
    if (!stream) throw new TypeError('body stream is closed or already used');
    this.streams.delete(id);
    const iterator = stream.iterator;
    const owner = stream.owner;
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<Uint8Array>> => {
          const result = await iterator.next();
          if (result.done) return result;
          const value = bytesOf(result.value);
          if (owner) owner.bytesIn += value.byteLength;
          return { value, done: false };
        },
        return: async (): Promise<IteratorResult<Uint8Array>> => {
          await iterator.return?.();
          return { value: undefined, done: true };
        },
      }),
    };
  }

  /** OPS.bodyRead: the next chunk for the guest, or null at the end. */
  async read(id: unknown): Promise<ArrayBuffer | null> {
    const stream = this.streams.get(Number(id));
    if (!stream) throw new TypeError('request body stream is closed');
    const { value, done } = await stream.iterator.next();
    if (done) {
      this.streams.delete(Number(id));
      return null;
    }
    const bytes = bytesOf(value);
    if (stream.owner) stream.owner.bytesIn += bytes.byteLength;
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  closeOf(invocation: Invocation): void {
    for (const [id, stream] of this.streams) {
      if (stream.owner !== invocation) continue;
      this.streams.delete(id);
      // Unread upload: let the source drain or close it (keeps the connection usable).
      void stream.iterator.return?.();
    }
  }
}

/** The chunks of a host stream, counted as the invocation's bytes out, until its end or a limit;
 *  the source is returned (closed) when reading stops early. */
export async function* hostChunks(invocation: Invocation, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  const iterator = source[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), invocation.aborted]);
      if (next.done) {
        done = true;
        return;
      }
      invocation.bytesOut += next.value.byteLength;
      yield next.value;
    }
  } finally {
    if (!done) void iterator.return?.();
  }
}

function pull(entry: GuestEntry, id: number): Promise<PulledChunk> {
  return entry.pullStream.apply(undefined, [id], { result: { promise: true, copy: true } }) as Promise<PulledChunk>;
}

function isError(chunk: PulledChunk): chunk is { error: { name: string; message: string; stack: string } } {
  return typeof chunk === 'object' && chunk !== null && !(chunk instanceof ArrayBuffer);
}

/** The chunks of a guest response stream, counted as the invocation's bytes out; a guest error is
 *  thrown with its description as `guest`. `touched` is called after every pull. */
export async function* guestChunks(entry: GuestEntry, invocation: Invocation, streamId: number, touched: () => void): AsyncGenerator<Uint8Array | string, void, undefined> {
  for (;;) {
    const chunk = await Promise.race([pull(entry, streamId), invocation.aborted]);
    touched();
    if (chunk === null) return;
    if (isError(chunk)) throw Object.assign(new Error(chunk.error.message), { guest: chunk.error });
    if (typeof chunk === 'string') {
      invocation.bytesOut += Buffer.byteLength(chunk);
      yield chunk;
    } else {
      invocation.bytesOut += chunk.byteLength;
      yield new Uint8Array(chunk);
    }
  }
}

/** What pullGuestStream tells the isolate's owner. A fetch can outlive the invocation that made
 *  it, so its body's pulls and cancel may run guest code with nothing in flight (the idle watch
 *  must see them: worker-instance.ts). */
export interface GuestStreamOwner {
  /** before each pull */
  pulling(): void;
  /** after each pull, answered or not */
  pulled(): void;
  /** reading stopped early: cancel the stream in the guest (while the isolate lives) */
  cancel(id: number): void;
}

/** Read a guest stream from the host (an outbound request body); stopping early cancels it. */
export async function* pullGuestStream(entry: GuestEntry, id: number, owner: GuestStreamOwner): AsyncGenerator<Uint8Array, void, undefined> {
  let finished = false;
  try {
    for (;;) {
      owner.pulling();
      let chunk: PulledChunk;
      try {
        chunk = await pull(entry, id);
      } finally {
        owner.pulled();
      }
      if (chunk === null) {
        finished = true;
        return;
      }
      if (isError(chunk)) {
        finished = true;
        throw new Error(chunk.error.message);
      }
      yield typeof chunk === 'string' ? Buffer.from(chunk) : new Uint8Array(chunk);
    }
  } finally {
    if (!finished) owner.cancel(id);
  }
}

const bytesOf = (chunk: Uint8Array | string): Uint8Array => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
