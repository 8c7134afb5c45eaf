// node:util: format and inspect are the sandbox's own (what console prints, Node's layout);
// promisify, callbackify, inherits, deprecate and types written here; isDeepStrictEqual from the
// `assert` package's comparison (the one its deepStrictEqual uses).
import { console, queueMicrotask, type AbortSignal } from './web.js';
import { inspect as baseInspect, format as baseFormat, customInspectSymbol, type InspectOptions } from '../../api/inspect.js';
import { isDeepStrictEqual as deepStrictEqual } from 'assert/build/internal/util/comparisons.js';
import * as types from './util-types.js';

type Fn = (...args: unknown[]) => unknown;

export function inspect(value: unknown, options?: Partial<InspectOptions> | boolean, depth?: number | null): string {
  // The legacy signature inspect(value, showHidden, depth)
  if (typeof options === 'boolean') return baseInspect(value, { showHidden: options, ...(depth !== undefined ? { depth } : {}) });
  return baseInspect(value, options ?? {});
}
inspect.custom = customInspectSymbol;
inspect.defaultOptions = { depth: 2, showHidden: false, breakLength: 80, compact: 3, maxArrayLength: 100, maxStringLength: 10000, customInspect: true, sorted: false };

export function format(...args: unknown[]): string {
  return baseFormat(...args);
}

export function formatWithOptions(options: Partial<InspectOptions>, ...args: unknown[]): string {
  if (typeof options !== 'object' || options === null) throw new TypeError('The "inspectOptions" argument must be of type object');
  return baseFormat(...args);
}

const kCustomPromisify = Symbol.for('nodejs.util.promisify.custom');

export function promisify<T extends Fn>(original: T): Fn {
  if (typeof original !== 'function') throw new TypeError('The "original" argument must be of type function');
  const custom = (original as unknown as Record<symbol, unknown>)[kCustomPromisify];
  if (custom !== undefined) {
    if (typeof custom !== 'function') throw new TypeError('The "util.promisify.custom" argument must be of type function');
    return custom as Fn;
  }
  function promisified(this: unknown, ...args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      Reflect.apply(original, this, [
        ...args,
        (error: unknown, ...values: unknown[]) => {
          if (error) reject(error);
          else resolve(values.length > 1 ? values : values[0]);
        },
      ]);
    });
  }
  Object.setPrototypeOf(promisified, Object.getPrototypeOf(original));
  Object.defineProperty(promisified, kCustomPromisify, { value: promisified, enumerable: false, writable: false, configurable: true });
  return Object.defineProperties(promisified, Object.getOwnPropertyDescriptors(original)) as Fn;
}
promisify.custom = kCustomPromisify;

export function callbackify(original: (...args: unknown[]) => Promise<unknown>): Fn {
  if (typeof original !== 'function') throw new TypeError('The "original" argument must be of type function');
  function callbackified(this: unknown, ...args: unknown[]): void {
    const callback = args.pop();
    if (typeof callback !== 'function') throw new TypeError('The last argument must be of type function');
    Reflect.apply(original, this, args).then(
      (value: unknown) => queueMicrotask(() => callback(null, value)),
      (reason: unknown) => {
        let error = reason;
        if (!reason) {
          error = Object.assign(new Error('Promise was rejected with a falsy value'), { code: 'ERR_FALSY_VALUE_REJECTION', reason });
        }
        queueMicrotask(() => callback(error));
      },
    );
  }
  Object.defineProperty(callbackified, 'name', { value: `${original.name}Callbackified` });
  return callbackified;
}

export function inherits(ctor: Fn & { super_?: unknown }, superCtor: Fn): void {
  if (typeof ctor !== 'function') throw new TypeError('The "ctor" argument must be of type function');
  if (typeof superCtor !== 'function') throw new TypeError('The "superCtor" argument must be of type function');
  if (superCtor.prototype === undefined) throw new TypeError('The "superCtor.prototype" property must be of type object');
  Object.defineProperty(ctor, 'super_', { value: superCtor, writable: true, configurable: true });
  Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
}

const warned = new Set<string>();

export function deprecate<T extends Fn>(fn: T, message: string, code?: string): T {
  if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
  const key = code ?? message;
  function deprecated(this: unknown, ...args: unknown[]): unknown {
    if (!warned.has(key)) {
      warned.add(key);
      console.warn(`${code ? `[${code}] ` : ''}DeprecationWarning: ${message}`);
    }
    return new.target ? Reflect.construct(fn, args, new.target) : Reflect.apply(fn, this, args);
  }
  Object.setPrototypeOf(deprecated, fn);
  if (fn.prototype) deprecated.prototype = fn.prototype;
  return deprecated as unknown as T;
}

/** A debug logger, enabled by nothing (workers have no NODE_DEBUG). */
export function debuglog(_section: string): Fn & { enabled: boolean } {
  const log = (() => undefined) as unknown as Fn & { enabled: boolean };
  log.enabled = false;
  return log;
}
export const debug = debuglog;

export function isDeepStrictEqual(a: unknown, b: unknown): boolean {
  return deepStrictEqual(a, b);
}

export function isArray(value: unknown): value is unknown[] {
  return Array.isArray(value);
}

const ANSI = /[\u001B\u009B][[\]()#;?]*(?:(?:(?:(?:;[-a-zA-Z\d/#&.:=?%@~_]+)*|[a-zA-Z\d]+(?:;[-a-zA-Z\d/#&.:=?%@~_]*)*)?\u0007)|(?:(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PR-TZcf-ntqry=><~]))/g;

export function stripVTControlCharacters(text: string): string {
  if (typeof text !== 'string') throw new TypeError('The "str" argument must be of type string');
  return text.replace(ANSI, '');
}

export function toUSVString(text: string): string {
  return String(text).toWellFormed();
}

/** util.aborted(signal, resource): resolves when the signal aborts. */
export function aborted(signal: AbortSignal, _resource: unknown): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

const g = globalThis as unknown as { TextEncoder: unknown; TextDecoder: unknown };
export const TextEncoder = g.TextEncoder;
export const TextDecoder = g.TextDecoder;
export { types };

export default {
  inspect, format, formatWithOptions, promisify, callbackify, inherits, deprecate, debuglog, debug, isDeepStrictEqual, isArray,
  stripVTControlCharacters, toUSVString, aborted, TextEncoder, TextDecoder, types,
};
