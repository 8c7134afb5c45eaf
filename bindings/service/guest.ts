// Guest half of service bindings: `env.AUTH.fetch(request)` hands the request to the host, which
// runs it on the bound worker in this same process (no HTTP, no sockets) and hands the response
// back. The guest names only its own binding; the host decides which worker that reaches.
import { registerBinding } from '../../sandbox/env.js';
import { hostCall } from '../../sandbox/bridge.js';
import { Request } from '../../sandbox/api/request.js';
import { hostByteStream } from '../../sandbox/host-stream.js';
import { requestToWire, responseFromWire } from '../../sandbox/wire.js';
import { OPS, type WireResponse } from '../../protocol/wall.js';

class Fetcher {
  readonly #binding: string;

  constructor(binding: string) {
    this.#binding = binding;
  }

  async fetch(input: unknown, init?: unknown): Promise<unknown> {
    const request = new Request(input as never, init as never);
    const wire = await requestToWire(request);
    const answer = await hostCall<WireResponse>(OPS.serviceFetch, this.#binding, wire);
    const stream = answer.stream !== undefined ? hostByteStream(answer.stream) : undefined;
    if (request.method === 'HEAD') return responseFromWire({ ...answer, body: null });
    return responseFromWire(answer, stream);
  }

  get [Symbol.toStringTag]() {
    return 'Fetcher';
  }
}

registerBinding('service', (name) => Object.freeze(new Fetcher(name)));
