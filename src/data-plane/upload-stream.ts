// An HTTP upload as an async iterator of chunks, for bodies that stream into the guest. Unlike
// the request's own async iterator, stopping early (`return()`) does not destroy the socket: the
// rest of the upload is drained and discarded so the connection stays usable for keep-alive.
// Reads are paced by the guest: the socket is paused while a few chunks wait unread.
import type http from 'node:http';

const HIGH_WATER_CHUNKS = 4;

export class UploadStream implements AsyncIterableIterator<Uint8Array> {
  private readonly queue: Buffer[] = [];
  private ended = false;
  private failure: Error | null = null;
  private stopped = false;
  private total = 0;
  private wake: (() => void) | null = null;
  private readonly onData = (chunk: Buffer) => {
    this.total += chunk.length;
    if (this.total > this.limit) {
      this.fail(new RangeError(`request body larger than the limit of ${this.limit} bytes`));
      return;
    }
    this.queue.push(chunk);
    if (this.queue.length >= HIGH_WATER_CHUNKS) this.req.pause();
    this.notify();
  };

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly limit: number,
  ) {
    req.pause();
    req.on('data', this.onData);
    req.once('end', () => {
      this.ended = true;
      this.notify();
    });
    req.once('error', (error) => this.fail(error));
    req.once('close', () => {
      if (!this.ended) this.fail(new Error('client closed the connection during the upload'));
    });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    for (;;) {
      if (this.queue.length) {
        const value = this.queue.shift()!;
        if (this.queue.length < HIGH_WATER_CHUNKS && !this.stopped) this.req.resume();
        return { value, done: false };
      }
      if (this.failure) throw this.failure;
      if (this.ended || this.stopped) return { value: undefined, done: true };
      this.req.resume();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** The guest is done with the body (or never read it): drain the rest into nothing. */
  async return(): Promise<IteratorResult<Uint8Array>> {
    this.stopped = true;
    this.queue.length = 0;
    this.req.off('data', this.onData);
    if (!this.req.destroyed) this.req.resume();
    this.notify();
    return { value: undefined, done: true };
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.req.off('data', this.onData);
    if (!this.req.destroyed) this.req.resume();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
