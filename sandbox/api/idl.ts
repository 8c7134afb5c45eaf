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
