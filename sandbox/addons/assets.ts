// Guest half of the ASSETS binding (bindings/assets): `env.ASSETS.fetch(request)` reads the
// worker's own static assets. The guest names only its binding; the host serves from the version's
// manifest with the same html_handling and not_found_handling as the data plane, and never runs
// the worker for it. Installed only into isolates of workers that have the binding.
import { registerBinding } from '../env.js';
import { hostCall } from '../bridge.js';
import { Request } from '../api/request.js';
import { hostByteStream } from '../host-stream.js';
import { requestToWire, responseFromWire } from '../wire.js';
import { OPS, type WireResponse } from '../../protocol/wall.js';
import { ASSETS_BINDING_TYPE } from '../../bindings/assets/protocol.js';

class AssetsFetcher {
  readonly #binding: string;

  constructor(binding: string) {
    this.#binding = binding;
  }

  async fetch(input: unknown, init?: unknown): Promise<unknown> {
    const request = new Request(input as never, init as never);
    const wire = await requestToWire(request);
    const answer = await hostCall<WireResponse>(OPS.assetsFetch, this.#binding, wire);
    const stream = answer.stream !== undefined ? hostByteStream(answer.stream) : undefined;
    return responseFromWire(answer, stream);
  }

  get [Symbol.toStringTag]() {
    return 'Fetcher';
  }
}

export default function install() {
  registerBinding(ASSETS_BINDING_TYPE, (name) => Object.freeze(new AssetsFetcher(name)));
  return {};
}
