// Guest half of service bindings: `env.AUTH.fetch(request)` hands the request to the host, which
// runs it on the bound worker in this same process (no HTTP, no sockets) and hands the response
// back; `env.AUTH.someMethod(...args)` calls a method of the bound worker's WorkerEntrypoint (RPC),
// its arguments and result structured-cloned across. The guest names only its own binding; the
// host decides which worker that reaches.
import { registerBinding } from '../../sandbox/env.js';
import { crossingBytes, hostCall, hostCallCounted, overCallBytes } from '../../sandbox/bridge.js';
import { Request } from '../../sandbox/api/request.js';
import { hostByteStream } from '../../sandbox/host-stream.js';
import { requestToWire, responseFromWire } from '../../sandbox/wire.js';
import { structuredCloneForHost } from '../../sandbox/api/structured-clone.js';
import { MAX_RPC_BYTES, OPS, RPC_RESERVED_METHODS, rpcTooLarge, type RpcAnswer, type WireResponse } from '../../protocol/wall.js';
import { refusedOnHost, spendInvocation } from '../../sandbox/invocation.js';

/** A call through the binding, refused here once the request's invocation allowance is spent
 *  (sandbox/invocation.ts: the same error as the host's, without crossing). */
async function serviceCall<T>(op: string, ...args: unknown[]): Promise<T> {
  const state = spendInvocation();
  try {
    return await hostCall<T>(op, ...args);
  } catch (error) {
    refusedOnHost(state, error, op);
    throw error;
  }
}

/** An RPC call: its arguments are held to Cloudflare's 32 MiB here, in the one count the wall makes
 *  of every call (the host measures them no more: the clone is the sandbox's own plain data, so
 *  the copy is what was counted, and the isolate's copyLimit stands behind it). Refused before
 *  anything is charged, as it never crosses. */
async function rpcCall(binding: string, method: string, clone: unknown[]): Promise<RpcAnswer> {
  const args = [binding, method, clone];
  const bytes = crossingBytes(args);
  if (bytes < 0) throw overCallBytes(OPS.serviceRpc);
  if (bytes > MAX_RPC_BYTES) throw new RangeError(rpcTooLarge(`env.${binding}.${method}()`, 'arguments', bytes));
  const state = spendInvocation();
  try {
    return await hostCallCounted<RpcAnswer>(OPS.serviceRpc, bytes, ...args);
  } catch (error) {
    refusedOnHost(state, error, OPS.serviceRpc);
    throw error;
  }
}

class Fetcher {
  readonly #binding: string;

  constructor(binding: string) {
    this.#binding = binding;
  }

  async fetch(input: unknown, init?: unknown): Promise<unknown> {
    const request = new Request(input as never, init as never);
    const wire = await requestToWire(request);
    const answer = await serviceCall<WireResponse>(OPS.serviceFetch, this.#binding, wire);
    const stream = answer.stream !== undefined ? hostByteStream(answer.stream) : undefined;
    if (request.method === 'HEAD') return responseFromWire({ ...answer, body: null });
    return responseFromWire(answer, stream);
  }

  get [Symbol.toStringTag]() {
    return 'Fetcher';
  }
}

// Errors thrown by the callee come back as their name and message; the common kinds keep their class.
const ERROR_CLASSES: Record<string, ErrorConstructor> = { TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };

async function callRpc(binding: string, method: string, args: unknown[]): Promise<unknown> {
  // Refused here, before anything crosses, with the name of what cannot be copied; the clone crosses.
  const answer = await rpcCall(binding, method, structuredCloneForHost(args));
  if ('error' in answer) {
    const Class = ERROR_CLASSES[answer.error.name] ?? Error;
    const error = new Class(answer.error.message);
    if (error.name !== answer.error.name) error.name = answer.error.name;
    throw error;
  }
  return answer.value;
}

/** A service binding: the Fetcher, and any other property a function that calls that method of
 *  the bound worker over RPC. `then` is not one (the binding is not a promise). */
function serviceBinding(name: string): object {
  const fetcher = Object.freeze(new Fetcher(name));
  const methods = new Map<string | symbol, (...args: unknown[]) => unknown>();
  return new Proxy(fetcher, {
    get(target, property) {
      if (typeof property === 'symbol' || property in target) {
        // The Fetcher's own methods run on the Fetcher (its private fields are not the proxy's).
        const value = Reflect.get(target, property, target);
        if (typeof value !== 'function' || property === 'constructor') return value;
        let bound = methods.get(property);
        if (!bound) methods.set(property, (bound = value.bind(target) as (...args: unknown[]) => unknown));
        return bound;
      }
      if (RPC_RESERVED_METHODS.includes(property)) return undefined;
      let method = methods.get(property);
      if (!method) methods.set(property, (method = (...args: unknown[]) => callRpc(name, property, args)));
      return method;
    },
  });
}

registerBinding('service', (name) => serviceBinding(name));
