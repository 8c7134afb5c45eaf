// Guest half of service bindings: `env.AUTH.fetch(request)` hands the request to the host, which
// runs it on the bound worker in this same process (no HTTP, no sockets) and hands the response
// back. The guest names only its own binding; the host decides which worker that reaches.
import { registerBinding } from '../../sandbox/env.js';
import { hostCall } from '../../sandbox/bridge.js';
import { Request } from '../../sandbox/api/request.js';
import { Response } from '../../sandbox/api/response.js';
import { ReadableStream } from '../../sandbox/api/streams.js';
import { requestToWire, type WireResponse } from '../../sandbox/wire.js';

/** The callee's streamed body, read from the host chunk by chunk. */
function hostStream(id: number): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    type: 'bytes',
    async pull(controller) {
      const chunk = await hostCall<ArrayBuffer | null>('body.read', id);
      if (chunk === null) controller.close();
      else if (chunk.byteLength) controller.enqueue(new Uint8Array(chunk));
    },
  });
}

class Fetcher {
  readonly #binding: string;

  constructor(binding: string) {
    this.#binding = binding;
  }

  async fetch(input: unknown, init?: unknown): Promise<unknown> {
    const request = new Request(input as never, init as never);
    const wire = await requestToWire(request);
    const answer = await hostCall<WireResponse>('service.fetch', this.#binding, wire);
    const nullBody = answer.status === 101 || answer.status === 204 || answer.status === 205 || answer.status === 304 || request.method === 'HEAD';
    const body = nullBody ? null : answer.stream !== undefined ? hostStream(answer.stream) : answer.body;
    return new Response(body, { status: answer.status, statusText: answer.statusText, headers: answer.headers });
  }

  get [Symbol.toStringTag]() {
    return 'Fetcher';
  }
}

registerBinding('service', (name) => Object.freeze(new Fetcher(name)));
