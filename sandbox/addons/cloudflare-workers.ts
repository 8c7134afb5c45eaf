// The `cloudflare:workers` built-in module: `env` (the worker's env, the same object its handlers
// get, filled before the top level runs), `waitUntil` (on the invocation running now), and the
// base classes a worker extends: WorkerEntrypoint (the default export as a class, and RPC targets
// of service bindings), DurableObject and RpcTarget. Installed only for workers that import it.
import { workerEnv } from '../env.js';
import { currentInvocation, invocation } from '../invocation.js';

const PromiseResolve = Promise.resolve.bind(Promise);

/** Extend it for a worker's default export (`export default class extends WorkerEntrypoint`) or a
 *  named entrypoint; one instance per event or RPC call, with the call's ctx and the env. */
class WorkerEntrypoint {
  ctx: unknown;
  env: unknown;
  constructor(ctx: unknown, env: unknown) {
    this.ctx = ctx;
    this.env = env;
  }
}

/** The base class of Durable Object classes: `this.ctx` (the object's state) and `this.env`. */
class DurableObject {
  ctx: unknown;
  env: unknown;
  constructor(ctx: unknown, env: unknown) {
    this.ctx = ctx;
    this.env = env;
  }
}

/** Marks a class whose instances are meant to be passed over RPC by reference. Cinder's RPC copies
 *  values (structured clone): an RpcTarget argument is refused as not cloneable. */
class RpcTarget {}

/** Keep the current invocation alive until `promise` settles, as ctx.waitUntil does. */
function waitUntil(promise: unknown): void {
  const state = invocation(currentInvocation());
  if (!state) throw new Error('waitUntil() was called outside of a request (at the top level, or after the request and its waitUntil work ended)');
  state.waitUntil.push(PromiseResolve(promise));
}

export default function install() {
  const namespace = { env: workerEnv, waitUntil, WorkerEntrypoint, DurableObject, RpcTarget };
  return { modules: { 'cloudflare:workers': { ...namespace, default: namespace } } };
}
