// Builds a worker's `env` from the descriptor the host sends at install time. Plain values are
// copied in; bindings that need the host (KV, services, ...) become guest objects that call the
// host by binding *name*, so the host decides what each name may reach.

import type { BindingDescriptor, EnvDescriptor } from '../protocol/wall.js';

type BindingFactory = (name: string, descriptor: BindingDescriptor) => unknown;

const factories = new Map<string, BindingFactory>([
  ['plain_text', (_name, d) => (d as { text: string }).text],
  ['secret_text', (_name, d) => (d as { text: string }).text],
  ['json', (_name, d) => (d as { json: unknown }).json],
]);

/** Guest halves of bindings (bindings/<kind>/guest.ts) register themselves here. */
export function registerBinding(type: string, factory: BindingFactory): void {
  factories.set(type, factory);
}

// As they were when the sandbox was evaluated: env is built after the worker's top level ran,
// which may have replaced Object.keys or the array iterator (a for-of or destructuring here).
const objectKeys = Object.keys;
const defineProperty = Object.defineProperty;

type EnvListener = (text: Record<string, string>) => void;
let envListener: EnvListener | null = null;

/** node:process (an add-on) fills process.env from the worker's text bindings (vars and secrets),
 *  as workerd does under nodejs_compat; it hears them here when the env is built. */
export function onTextBindings(listener: EnvListener): void {
  envListener = listener;
}

/**
 * The worker's env: one object for the isolate's life, filled in place when the env is built, so
 * that `import { env } from "cloudflare:workers"` (taken at the top level, before that) is the very
 * object handlers get, as on workerd.
 */
export const workerEnv: Record<string, unknown> = {};
let filled = false;

/** Fill workerEnv from the host's descriptor (JSON), once: the loader may have filled it before
 *  the top level ran, and installWorker, after, keeps what is there. */
export function fillWorkerEnv(descriptorJson: string): Record<string, unknown> {
  if (filled) return workerEnv;
  const descriptor = jsonParse(descriptorJson) as EnvDescriptor;
  buildEnv(descriptor, workerEnv);
  // An empty env (the pool's warm-up worker, or a worker without bindings) leaves it open.
  filled = objectKeys(descriptor).length > 0;
  return workerEnv;
}

const jsonParse = JSON.parse;

export function buildEnv(descriptor: EnvDescriptor | undefined, env: Record<string, unknown> = {}): Record<string, unknown> {
  const names = objectKeys(descriptor ?? {});
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const binding = descriptor![name];
    const factory = factories.get(binding.type);
    if (!factory) throw new TypeError(`Unsupported binding type "${binding.type}" for env.${name}`);
    // An own property whatever the name ("__proto__" would otherwise set env's prototype).
    defineProperty(env, name, { value: factory(name, binding), enumerable: true, writable: true, configurable: true });
  }
  if (envListener) {
    const text: Record<string, string> = {};
    for (let i = 0; i < names.length; i++) {
      const binding = descriptor![names[i]];
      if (binding.type === 'plain_text' || binding.type === 'secret_text') defineProperty(text, names[i], { value: (binding as { text: string }).text, enumerable: true, writable: true, configurable: true });
    }
    envListener(text);
  }
  return env;
}
