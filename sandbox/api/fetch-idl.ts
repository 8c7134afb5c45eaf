// WebIDL pieces the fetch family needs beyond ./idl.js: "pair iterators" (shared by Headers,
// URLSearchParams and FormData), ByteString/USVString conversions and enumerable members.
//
// Each pair-iterable interface gets its own iterator prototype (`Headers Iterator`, ...) that
// inherits %IteratorPrototype%, as in browsers and workerd. An iterator re-reads its target's
// pairs on every next(), so changes made during iteration are seen, as WebIDL specifies.

export type IteratorKind = 'key' | 'value' | 'key+value';

/** Returns the current pairs of a target; called on every step. */
export type PairSource<K, V> = () => readonly (readonly [K, V])[];

const IteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));

/**
 * Builds the iterator class for one interface and returns a factory of its iterators. `tag` is
 * the interface name; the prototype's toStringTag is `${tag} Iterator`. (Private fields rather
 * than a WeakMap of states: iterators are made per request, and WeakMap entries are costly to GC.)
 */
export function pairIteratorFactory<K, V>(tag: string) {
  class PairIterator {
    #pairs: PairSource<K, V>;
    #kind: IteratorKind;
    #index = 0;

    constructor(pairs: PairSource<K, V>, kind: IteratorKind) {
      this.#pairs = pairs;
      this.#kind = kind;
    }

    next(): IteratorResult<unknown> {
      const pairs = this.#pairs();
      if (this.#index >= pairs.length) return { value: undefined, done: true };
      const [key, value] = pairs[this.#index++];
      const kind = this.#kind;
      return { value: kind === 'key' ? key : kind === 'value' ? value : [key, value], done: false };
    }
  }
  const proto = PairIterator.prototype;
  Object.setPrototypeOf(proto, IteratorPrototype);
  // Browsers' iterator prototypes have no `constructor` of their own and an enumerable next().
  delete (proto as { constructor?: unknown }).constructor;
  Object.defineProperty(proto, 'next', { enumerable: true });
  Object.defineProperty(proto, Symbol.toStringTag, { value: `${tag} Iterator`, configurable: true });
  return (pairs: PairSource<K, V>, kind: IteratorKind): IterableIterator<unknown> =>
    new PairIterator(pairs, kind) as unknown as IterableIterator<unknown>;
}

/** WebIDL forEach over a pair iterable: re-reads the pairs each step, like the iterator does. */
export function forEachPair<K, V>(
  pairs: PairSource<K, V>,
  callback: unknown,
  thisArg: unknown,
  target: unknown,
  tag: string,
): void {
  if (typeof callback !== 'function') {
    throw new TypeError(`Failed to execute 'forEach' on '${tag}': parameter 1 is not of type 'Function'.`);
  }
  for (let i = 0; ; i++) {
    const list = pairs();
    if (i >= list.length) return;
    const [key, value] = list[i];
    callback.call(thisArg, value, key, target);
  }
}

/** Define `[Symbol.iterator]` as the same function object as `entries`, as WebIDL requires. */
export function aliasIterator(proto: object): void {
  Object.defineProperty(proto, Symbol.iterator, {
    value: (proto as { entries: unknown }).entries,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

/** WebIDL puts attributes and operations on the prototype as enumerable properties; class
 *  syntax makes them non-enumerable. Fix that for every own member except the constructor. */
export function enumerableMembers(klass: { prototype: object }): void {
  for (const target of [klass.prototype, klass] as object[]) {
    for (const key of Object.getOwnPropertyNames(target)) {
      if (key === 'constructor' || key === 'prototype' || key === 'length' || key === 'name') continue;
      Object.defineProperty(target, key, { enumerable: true });
    }
  }
}

/** Convert a value the way WebIDL converts to ByteString: ToString, then reject code units > 0xFF. */
export function toByteString(value: unknown, what: string): string {
  const s = `${value as string}`;
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\xff]/.test(s)) throw new TypeError(`${what} contains a character outside Latin-1 (not a ByteString).`);
  return s;
}

/** Convert a value the way WebIDL converts to USVString: ToString, then lone surrogates -> U+FFFD. */
export function toUSVString(value: unknown): string {
  const s = `${value as string}`;
  return s.isWellFormed() ? s : s.toWellFormed();
}
