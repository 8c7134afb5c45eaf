// Small WebIDL conversions shared by the platform-family interfaces (encoding, events, abort,
// crypto, ...), so each of them converts arguments the same way browsers and workerd do.

/** `Symbol.toStringTag` as browsers define it: a non-enumerable, read-only data property. */
export function setToStringTag(klass: { prototype: object }, tag: string): void {
  Object.defineProperty(klass.prototype, Symbol.toStringTag, { value: tag, configurable: true });
}

/** WebIDL DOMString: ToString, which throws a TypeError for symbols (unlike String()). */
export function toDOMString(value: unknown): string {
  return `${value as string}`;
}

/** WebIDL dictionary: undefined/null mean "all defaults"; other non-objects are a TypeError. */
export function toDictionary(value: unknown, context: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' && typeof value !== 'function') {
    throw new TypeError(`${context}: The provided value is not of type 'object'.`);
  }
  return value as Record<string, unknown>;
}

/** The "N argument(s) required" TypeError browsers throw when a required argument is missing. */
export function requireArgs(given: number, needed: number, context: string): void {
  if (given < needed) {
    throw new TypeError(`${context}: ${needed} argument${needed > 1 ? 's' : ''} required, but only ${given} present.`);
  }
}

/** Interfaces without a public constructor (AbortSignal, Crypto, ...) take this module-private
 *  token from their own module; anyone else calling `new` gets "Illegal constructor". */
export const INTERNAL: unique symbol = Symbol('cinder.internal');

export function checkInternal(token: unknown): void {
  if (token !== INTERNAL) throw new TypeError('Illegal constructor');
}

// --- platform objects --------------------------------------------------------------------------

// prototype -> interface name (or null); filled lazily, never at snapshot time.
let platformProtos: WeakMap<object, string | null> | null = null;

/**
 * The interface name when `value` is an instance (or subclass instance) of one of the sandbox's
 * own global classes (Request, Headers, AbortSignal, ...), else null. Recognised structurally, so
 * the two API families need no registry: a prototype whose data `Symbol.toStringTag` names a
 * global class, defined non-enumerable (as the sandbox defines globals) and written in JS (not a
 * V8 built-in such as Map). structuredClone refuses these; inspect shows their attributes.
 */
export function platformInterfaceName(value: object): string | null {
  const cache = (platformProtos ??= new WeakMap());
  for (let proto = Object.getPrototypeOf(value); proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    let name = cache.get(proto);
    if (name === undefined) {
      name = interfaceNameOf(proto);
      cache.set(proto, name);
    }
    if (name !== null) return name;
  }
  return null;
}

function interfaceNameOf(proto: object): string | null {
  const tag = Object.getOwnPropertyDescriptor(proto, Symbol.toStringTag);
  if (!tag || typeof tag.value !== 'string') return null;
  const global = Object.getOwnPropertyDescriptor(globalThis, tag.value);
  const ctor = global?.value as { prototype?: unknown } | undefined;
  if (!global || global.enumerable || typeof ctor !== 'function' || ctor.prototype !== proto) return null;
  return /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(ctor)) ? null : tag.value;
}
