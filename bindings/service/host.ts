// Host half of service bindings: the `service.fetch` and `service.rpc` ops. A worker calls another
// worker in-process through runtime.fetch (or runtime.rpc, for a method of its WorkerEntrypoint),
// so the callee runs in its own isolate under its own limits and is metered as its own invocation;
// the call counts as one subrequest of the caller's invocation.
import { newRequestId } from '../../src/model/request-id.js';
import { resolveLimits } from '../../src/model/limits.js';
import type { WorkerDefinition } from '../../src/model/worker-definition.js';
import type { OpCall, OpRegistry, RuntimeRequest, RuntimeResponse, RuntimeRpcResult } from '../../src/runtime/contract.js';
import { OPS, RPC_RESERVED_METHODS, rpcTooLarge, type RpcAnswer, type WireResponse } from '../../protocol/wall.js';
import { outsideRequestMessage } from '../../protocol/outside-request.js';
import { MAX_SERVICE_DEPTH, chargeSubrequest, type InvocationPlace } from '../../src/model/request-tree.js';

/** What service calls need of the runtime: its workers, and a way to invoke one. */
export interface ServiceRuntime extends OpRegistry {
  has(name: string): boolean;
  definition(name: string): WorkerDefinition | undefined;
  fetch(name: string, request: RuntimeRequest, requestId?: string, place?: InvocationPlace): Promise<RuntimeResponse>;
  rpc(name: string, entrypoint: string | null, method: string, args: unknown[], requestId?: string, place?: InvocationPlace): Promise<RuntimeRpcResult>;
}

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

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

const RPC_METHOD = /^[A-Za-z_$][\w$]{0,255}$/;

export function registerServiceBindings(runtime: ServiceRuntime): void {
  /**
   * What a call through `bindingName` may reach, charged to the caller before the callee starts.
   * The request's invocation cap is checked first and a call refused there changes no count: the
   * guest half refuses calls past the allowance its invocation was handed (an upper bound) with the
   * same error and without crossing, and must leave every count as this check would. (The depth
   * check before it cannot fail first: a chain of depth d is d + 1 invocations.) Everything after
   * the cap check is charged to a call even when it is then refused, as before.
   */
  const admit = (call: OpCall, op: string, bindingName: unknown, what: string) => {
    const binding = typeof bindingName === 'string' ? call.binding(bindingName) : undefined;
    if (!binding || binding.type !== 'service') throw new TypeError(`env.${String(bindingName)} is not a service binding`);
    const { invocation } = call;
    // (the worker instance refuses such a call before it gets here, in these words: the guest knows them)
    if (!invocation) throw new Error(outsideRequestMessage(op));
    const depth = invocation.place.depth + 1;
    if (depth > MAX_SERVICE_DEPTH) throw new Error(`env.${bindingName}.${what}(): service binding chain is deeper than ${MAX_SERVICE_DEPTH} workers`);
    invocation.place.tree.chargeInvocation();
    chargeSubrequest(invocation, call.limits.subrequests);
    const target = binding.service;
    if (!runtime.has(target) || (binding.account !== undefined && runtime.definition(target)?.account !== binding.account)) {
      throw new Error(`env.${bindingName}.${what}(): no worker named "${target}" is deployed`);
    }
    return { binding, target, place: { tree: invocation.place.tree, depth } };
  };

  runtime.registerOp(OPS.serviceRpc, async (call: OpCall, args: unknown[]): Promise<RpcAnswer> => {
    const [bindingName, method, rpcArgs] = args;
    // Same rules as fetch: one invocation of the request tree (checked first, as the guest does),
    // one subrequest of the caller, the chain's depth, and the caller's own account only (with the
    // same message as a missing worker).
    const { binding, target, place } = admit(call, OPS.serviceRpc, bindingName, String(method).slice(0, 64));
    if (typeof method !== 'string' || !RPC_METHOD.test(method) || RPC_RESERVED_METHODS.includes(method)) {
      throw new TypeError(`env.${String(bindingName)}: ${JSON.stringify(String(method).slice(0, 64))} is not a method that can be called over RPC`);
    }
    if (!Array.isArray(rpcArgs)) throw new TypeError(`env.${String(bindingName)}.${method}(): invalid arguments`);
    const name = `env.${String(bindingName)}.${method}()`;
    // Cloudflare's 32 MiB for arguments and result is counted in the guests, where the values are
    // made (bindings/service/guest.ts, sandbox/dispatch.ts dispatchRpc), not measured again here on
    // the serving thread: a guest that lies about its count gains nothing, as what crosses is held
    // to the isolate's copyLimit anyway (a safety bound; the 32 MiB is compatibility).
    const result = await runtime.rpc(target, binding.type === 'service' ? (binding.entrypoint ?? null) : null, method, rpcArgs, newRequestId(), place);
    if (result.loadError !== undefined) throw new Error(`${name}: worker "${target}" failed to load: ${result.loadError}`);
    if (result.refused !== undefined) throw new Error(`${name}: ${result.refused}`);
    if (result.limit) throw new Error(`${name}: worker "${target}" ${result.limit.message}`);
    if (result.exception) return { error: { name: String(result.exception.name || 'Error'), message: String(result.exception.message ?? '') } };
    if (result.oversize !== undefined) throw new RangeError(rpcTooLarge(name, 'result', result.oversize));
    return { value: result.value };
  });

  runtime.registerOp(OPS.serviceFetch, async (call: OpCall, args: unknown[]): Promise<WireResponse> => {
    const [bindingName, rawRequest] = args;
    // Same rule and error as outbound fetch(): each call is one subrequest of the caller, and of
    // the top-level request it serves; the callee's own invocation counts against that request's
    // invocations (request-tree.ts, checked first). All of it is charged before the callee starts. A binding
    // reaches its own account's workers only: the name may have been deleted and taken by another
    // account since the deploy that checked it (same message as a missing worker).
    const { binding, target, place } = admit(call, OPS.serviceFetch, bindingName, 'fetch');
    if (binding.type === 'service' && binding.entrypoint !== undefined) {
      throw new Error(`env.${bindingName}.fetch(): this binding names entrypoint "${binding.entrypoint}"; Cinder delivers fetch() only to the default export (call the entrypoint's methods over RPC instead; see docs/compat.md)`);
    }
    const request = checkRequest(rawRequest);
    const targetLimits = resolveLimits(runtime.definition(target)?.limits);
    if (request.body && request.body.byteLength > targetLimits.requestBodyBytes) {
      throw new RangeError(`env.${bindingName}.fetch(): the request body is larger than ${target}'s limit of ${targetLimits.requestBodyBytes} bytes`);
    }

    const result = await runtime.fetch(target, request, newRequestId(), place);
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
    if (result.stream) response.stream = call.openStream(result.stream);
    return response;
  });
}
