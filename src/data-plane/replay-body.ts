// A request body that can still go to the origin after the worker read it (or part of it), for
// ctx.passThroughOnException(). Only requests on a route with an origin come here. The chunks the
// worker reads are kept (references to the chunks node:http handed us: no copy) up to a bound the
// operator sets; past it the copy is dropped and the body can no longer be replayed, which the
// ingress answers with a 500 saying so rather than forwarding a truncated body. The part the
// worker never read stays in the socket: when the worker ends, the ingress either replays (the
// kept prefix, then the rest straight from the client) or releases (the rest is drained, the
// connection stays usable), so the host never holds more than the bound per request.

/** The default bound on what is kept of a body the worker read (cinder serve --origin-body-max). */
export const DEFAULT_ORIGIN_BODY_MAX = 1024 * 1024;

export class ReplayableBody implements AsyncIterableIterator<Uint8Array> {
  private readonly kept: Uint8Array[] = [];
  private keptBytes = 0;
  /** the worker read more than the bound: what it read is gone */
  private overflowed = false;
  /** the worker stopped reading (or the invocation ended): the source is parked, not drained */
  private parked = false;
  private settled = false;
  /** released while the worker still reads it (a streamed response echoing the body): drained
   *  once the worker is done */
  private releasePending = false;

  constructor(
    private readonly source: AsyncIterator<Uint8Array>,
    readonly bound: number,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.parked) return { value: undefined, done: true };
    const result = await this.source.next();
    if (!result.done && !this.overflowed && !this.settled) {
      if (this.keptBytes + result.value.byteLength > this.bound) {
        this.overflowed = true;
        this.kept.length = 0;
      } else {
        this.kept.push(result.value);
        this.keptBytes += result.value.byteLength;
      }
    }
    return result;
  }

  /** The worker is done with the body: the rest waits for replay() or release(). */
  async return(): Promise<IteratorResult<Uint8Array>> {
    this.parked = true;
    if (this.releasePending) void this.source.return?.();
    return { value: undefined, done: true };
  }

  /** Why the body cannot be sent to the origin, or null when it can. */
  replayProblem(): string | null {
    if (this.overflowed) return `the worker had read more than ${this.bound} bytes of the request body, more than the host keeps to pass it through (cinder serve --origin-body-max)`;
    if (this.settled) return 'the request body was already released';
    return null;
  }

  /** The whole body again: what the worker read, then the rest from the client. */
  replay(): AsyncIterable<Uint8Array> {
    const problem = this.replayProblem();
    if (problem) throw new Error(problem);
    this.settled = true;
    // From here the origin reads the source; the worker (it threw) reads no more.
    this.parked = true;
    const kept = this.kept.splice(0);
    const source = this.source;
    return (async function* () {
      let done = false;
      try {
        yield* kept;
        for (;;) {
          const next = await source.next();
          if (next.done) {
            done = true;
            return;
          }
          yield next.value;
        }
      } finally {
        // The origin stopped reading (it failed, or answered early): drain the rest.
        if (!done) void source.return?.();
      }
    })();
  }

  /** Not replayed: stop keeping, and once the worker is done with the body let the source drain
   *  the rest of the upload (keeps the connection usable). */
  release(): void {
    this.kept.length = 0;
    if (this.settled) return;
    this.settled = true;
    if (this.parked) void this.source.return?.();
    else this.releasePending = true;
  }
}
