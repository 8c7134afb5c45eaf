// Before a worker's modules are evaluated: its env for cloudflare:workers, and the values of its
// Data and CompiledWasm modules (protocol/wall.ts MODULE_VALUES_GLOBAL):
// made from bytes the host hands over at load time, before any of the worker's code runs, and
// taken once each by the module the loader synthesized for them. A wasm module is compiled here,
// by the loader, never from bytes a handler passes (wasm.ts keeps its memory under the limit).
import { compileUploadedModule } from './wasm.js';
import { fillWorkerEnv } from './env.js';
import { MODULE_VALUES_GLOBAL } from '../protocol/wall.js';

const defineProperty = Object.defineProperty;
const jsonParse = JSON.parse;
const MapCtor = Map;
const mapGet = Map.prototype.get;
const mapSet = Map.prototype.set;
const mapDelete = Map.prototype.delete;
const mapHas = Map.prototype.has;
const apply: (fn: Function, self: unknown, args: unknown[]) => any = Reflect.apply;
const U8 = Uint8Array;
const ErrorCtor = Error;

/**
 * Host entry, called by the loader before the worker's modules are evaluated, when they need it:
 * `env` (the env descriptor, JSON) when a module imports cloudflare:workers, whose `env` is then
 * filled for the top level to read; `kinds` (JSON [name, "data" | "wasm"][]) and one ArrayBuffer
 * per entry for Data and CompiledWasm modules, leaving on MODULE_VALUES_GLOBAL a function that
 * deletes itself and answers `take(name)`, which hands each value out once.
 */
export function prepareLoad(env: string | null, kinds: string, ...buffers: ArrayBuffer[]): void {
  if (env !== null) fillWorkerEnv(env);
  if (kinds === '[]') return;
  const list = jsonParse(kinds) as [string, 'data' | 'wasm'][];
  const values = new MapCtor<string, unknown>();
  for (let i = 0; i < list.length; i++) {
    const [name, kind] = list[i];
    const bytes = buffers[i];
    apply(mapSet, values, [name, kind === 'wasm' ? compileUploadedModule(new U8(bytes)) : bytes]);
  }
  const take = (name: string): unknown => {
    if (!apply(mapHas, values, [name])) throw new ErrorCtor(`module "${name}" has no value to take`);
    const value = apply(mapGet, values, [name]);
    apply(mapDelete, values, [name]);
    return value;
  };
  defineProperty(globalThis, MODULE_VALUES_GLOBAL, {
    value: () => {
      delete (globalThis as Record<string, unknown>)[MODULE_VALUES_GLOBAL];
      return take;
    },
    configurable: true,
    writable: false,
    enumerable: false,
  });
}
