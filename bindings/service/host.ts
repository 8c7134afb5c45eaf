// Host half of service bindings: the `service.fetch` op. A worker calls another worker in-process
// through runtime.fetch, so the callee runs in its own isolate under its own limits and is metered
// as its own invocation; the call counts as one subrequest of the caller's invocation.
import { newRequestId } from '../../src/model/request-id.js';
import { resolveLimits } from '../../src/model/limits.js';
import type { WorkerDefinition } from '../../src/model/worker-definition.js';
import type { OpCall, OpRegistry, RuntimeRequest, RuntimeResponse } from '../../src/runtime/contract.js';
import { OPS, type WireResponse } from '../../protocol/wall.js';
import { MAX_SERVICE_DEPTH, chargeSubrequest, type InvocationPlace } from '../../src/model/request-tree.js';

/** What service calls need of the runtime: its workers, and a way to invoke one. */
export interface ServiceRuntime extends OpRegistry {
  has(name: string): boolean;
  definition(name: string): WorkerDefinition | undefined;
  fetch(name: string, request: RuntimeRequest, requestId?: string, place?: InvocationPlace): Promise<RuntimeResponse>;
}

export interface ServiceBindingOptions {
  /** how deep a chain of service calls may go (A -> B -> C ...); stops a worker calling itself forever */
  maxDepth?: number;
}

/** Cloudflare allows a chain of 32 workers invoked through service bindings. */
export const DEFAULT_MAX_DEPTH = MAX_SERVICE_DEPTH;

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

async function* asBytes(source: AsyncGenerator<Uint8Array | string, void, undefined>): AsyncGenerator<Uint8Array, void, undefined> {
  try {
    for await (const chunk of source) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
  } finally {
    await source.return?.();
  }
}

/** The guest is untrusted: check the request it handed over field by field. */
function checkRequest(raw: unknown): RuntimeRequest {
  const value = raw as Partial<RuntimeRequest> | null;
  if (!value || typeof value !== 'object') throw new TypeError('service binding: invalid request');
  if (typeof value.method !== 'string' || !METHOD.test(value.method)) throw new TypeError('service binding: invalid request method');
  if (typeof value.url !== 'string' || !/^https?:\/\//i.test(value.url)) throw new TypeError('service binding: the request URL must be an absolute http(s) URL');
  if (!Array.isArray(value.headers) || !value.headers.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string')) {
    throw new TypeError('service binding: invalid request headers');
  }
  if (value.body !== null && value.body !== undefined && !(value.body instanceof ArrayBuffer)) throw new TypeError('service binding: invalid request body');
  return { method: value.method, url: value.url, headers: value.headers, body: value.body ?? null };
}

export function registerServiceBindings(runtime: ServiceRuntime, options: ServiceBindingOptions = {}): void {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;

  runtime.registerOp(OPS.serviceFetch, async (call: OpCall, args: unknown[]): Promise<WireResponse> => {
    const [bindingName, rawRequest] = args;
    const binding = typeof bindingName === 'string' ? call.binding(bindingName) : undefined;
    if (!binding || binding.type !== 'service') throw new TypeError(`env.${String(bindingName)} is not a service binding`);
    const { invocation } = call;
    if (!invocation) throw new Error(`env.${bindingName}.fetch() was called outside of a request (after the response and its waitUntil work finished)`);

    // Same rule and error as outbound fetch(): each call is one subrequest of the caller, and of
    // the top-level request it serves; the callee's own invocation counts against that request's
    // invocations (request-tree.ts). All of it is charged before the callee starts.
    chargeSubrequest(invocation, call.limits.subrequests);
    const depth = invocation.place.depth + 1;
    if (depth > maxDepth) throw new Error(`env.${bindingName}.fetch(): service binding chain is deeper than ${maxDepth} workers`);
    invocation.place.tree.chargeInvocation();

    const request = checkRequest(rawRequest);
    const target = binding.service;
    // A binding reaches its own account's workers only: the name may have been deleted and taken
    // by another account since the deploy that checked it. Same message as a missing worker.
    if (!runtime.has(target) || (binding.account !== undefined && runtime.definition(target)?.account !== binding.account)) {
      throw new Error(`env.${bindingName}.fetch(): no worker named "${target}" is deployed`);
    }
    const targetLimits = resolveLimits(runtime.definition(target)?.limits);
    if (request.body && request.body.byteLength > targetLimits.requestBodyBytes) {
      throw new RangeError(`env.${bindingName}.fetch(): the request body is larger than ${target}'s limit of ${targetLimits.requestBodyBytes} bytes`);
    }

    const result = await runtime.fetch(target, request, newRequestId(), { tree: invocation.place.tree, depth });
    // The callee's failure surfaces in the caller as an exception, as it does on workerd.
    if (result.loadError) {
      throw new Error(`env.${bindingName}.fetch(): worker "${target}" failed to load: ${result.loadError}`);
    }
    if (result.refused !== undefined) throw new Error(`env.${bindingName}.fetch(): ${result.refused}`);
    if (result.limit) throw new Error(`env.${bindingName}.fetch(): worker "${target}" ${result.limit.message}`);
    if (result.exception) throw new Error(`env.${bindingName}.fetch(): worker "${target}" threw ${result.exception.name}: ${result.exception.message}`);
    if (result.webSocket) {
      // Not carried across a service binding (yet): the callee's end is closed, and said so.
      result.webSocket.owner.drop(result.webSocket.socketId);
      throw new TypeError(`env.${bindingName}.fetch(): worker "${target}" answered with a WebSocket, which Cinder does not pass through service bindings yet`);
    }
    const response: WireResponse = { status: result.status, statusText: result.statusText ?? '', headers: result.headers, body: result.body };
    // A streamed body stays a stream: the caller reads it chunk by chunk (body.read), pulling the
    // callee's stream as it goes; if the caller's invocation ends first, both are cancelled.
    if (result.stream) response.stream = call.openStream(asBytes(result.stream));
    return response;
  });
}
