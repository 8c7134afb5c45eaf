// Events an add-on handles (a Durable Object's fetch, RPC call or alarm): the host delivers them
// through one entry, dispatchAddonEvent (sandbox/dispatch.ts), by kind; the add-on registers the
// handler for its kind when installed. Also what such handlers need of the installed worker: its
// module namespace (a Durable Object class is a named export) and its env.

export type AddonEventHandler = (payload: unknown) => Promise<object>;

const handlers = new Map<string, AddonEventHandler>();
let workerNamespace: Record<string, unknown> | undefined;
let workerEnvironment: Record<string, unknown> = {};

export function registerEventHandler(kind: string, handler: AddonEventHandler): void {
  handlers.set(kind, handler);
}

export function eventHandler(kind: string): AddonEventHandler | undefined {
  return handlers.get(kind);
}

/** Called by installWorker. */
export function rememberWorker(namespace: unknown, env: Record<string, unknown>): void {
  workerNamespace = namespace && typeof namespace === 'object' ? (namespace as Record<string, unknown>) : undefined;
  workerEnvironment = env;
}

/** The worker's module namespace (undefined for a service-worker script) and env. */
export function installedWorker(): { namespace: Record<string, unknown> | undefined; env: Record<string, unknown> } {
  return { namespace: workerNamespace, env: workerEnvironment };
}
