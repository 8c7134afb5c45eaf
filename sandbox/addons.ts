// The guest side of add-ons (protocol/addons.ts): the host evaluates an add-on's bundle, which
// yields a wrapper function, and hands it to installAddon. The wrapper gets the base's module
// table (addon-base.ts) and returns the add-on's install(); what install() returns is put on
// globalThis or kept as built-in modules for the worker's imports.
import { BASE_MODULES } from './addon-base.js';
import { BUILTIN_MODULE_GLOBAL, type AddonInstall, type AddonInstalled } from '../protocol/addons.js';

type AddonWrapper = (base: Record<string, object>) => AddonInstall;

const installed = new Map<string, string>();
const builtinModules = new Map<string, object>();

// As they were when the sandbox was evaluated (guest code runs before later add-ons install).
const defineProperty = Object.defineProperty;
const objectKeys = Object.keys;
const jsonStringify = JSON.stringify;

/** Install one add-on; answers the export names of its built-in modules (AddonInstalled, JSON). */
export function installAddon(wrapper: unknown, name: string, files?: Record<string, ArrayBuffer>): string {
  const done = installed.get(name);
  if (done !== undefined) return done;
  if (typeof wrapper !== 'function') throw new TypeError(`cinder: add-on ${name} did not evaluate to a function`);
  const exports = (wrapper as AddonWrapper)(BASE_MODULES)(files ?? {});
  const answer: AddonInstalled = { modules: {} };
  const globals = exports.globals ?? {};
  for (const key of objectKeys(globals)) {
    defineProperty(globalThis, key, { value: globals[key], writable: true, configurable: true, enumerable: false });
  }
  const modules = exports.modules ?? {};
  for (const specifier of objectKeys(modules)) {
    const namespace = modules[specifier];
    builtinModules.set(specifier, namespace);
    answer.modules[specifier] = objectKeys(namespace);
  }
  if (builtinModules.size > 0 && !(BUILTIN_MODULE_GLOBAL in globalThis)) {
    defineProperty(globalThis, BUILTIN_MODULE_GLOBAL, { value: builtinModule, writable: false, configurable: true, enumerable: false });
  }
  const text = jsonStringify(answer);
  installed.set(name, text);
  return text;
}

function builtinModule(specifier: string): object {
  const namespace = builtinModules.get(specifier);
  if (!namespace) throw new Error(`No such module "${specifier}"`);
  return namespace;
}

/** The namespace an installed add-on gave a built-in module: for an add-on that extends another
 *  (node:* globals read node:buffer's Buffer), declared through `needs` in protocol/addons.ts. */
export function builtinNamespace(specifier: string): object | undefined {
  return builtinModules.get(specifier);
}

/** Called once the worker's modules have been evaluated: the shims have read what they need. */
export function closeBuiltinModules(): void {
  delete (globalThis as Record<string, unknown>)[BUILTIN_MODULE_GLOBAL];
}
