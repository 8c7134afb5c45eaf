// Headers (WHATWG Fetch §5.1). Names are stored lowercased: every observable output (get,
// iteration, the wire) is lowercase anyway, as in workerd. Iteration follows Fetch's "sort and
// combine": names sorted, repeated values joined with ", ", except Set-Cookie, whose values are
// yielded one by one because they cannot be combined safely.
//
// Guards: Fetch's "request"/"response" guards forbid some names in browsers only; workerd (a
// server) enforces none of them, and neither do we. What remains is "immutable": the headers of
// Response.redirect(), Response.error() and of a request as it arrives from the wire.
import { aliasIterator, enumerableMembers, forEachPair, pairIteratorFactory, toByteString } from './fetch-idl.js';
import { setToStringTag } from './idl.js';

export type HeadersGuard = 'none' | 'immutable';
export type HeadersInit = Headers | Iterable<Iterable<unknown>> | Record<string, unknown>;
type Pair = [name: string, value: string];

/** RFC 9110 token: what a field name, a method, or a MIME type/subtype/parameter name may be. */
export const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// After trimming HTTP whitespace, a value may not hold NUL, CR or LF (Fetch "header value").
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\0\r\n]/;
// eslint-disable-next-line no-control-regex
const EDGE_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

export function normalizeHeaderName(name: unknown): string {
  const s = toByteString(name, 'Header name');
  if (!HTTP_TOKEN.test(s)) throw new TypeError(`Invalid header name: "${s}".`);
  return s.toLowerCase();
}

export function normalizeHeaderValue(value: unknown): string {
  let s = toByteString(value, 'Header value');
  // Fast path: most values have no edge whitespace; the regex replace allocates.
  const first = s.charCodeAt(0);
  const last = s.charCodeAt(s.length - 1);
  if (first <= 0x20 || last <= 0x20) s = s.replace(EDGE_WHITESPACE, '');
  if (BAD_VALUE.test(s)) throw new TypeError(`Invalid header value: ${JSON.stringify(s)}.`);
  return s;
}

const makeIterator = pairIteratorFactory<string, string>('Headers');

// Module-private access to a Headers' internals for Request/Response/body (set in a static block).
let guardOf: (headers: Headers, guard?: HeadersGuard) => HeadersGuard;
let listOf: (headers: Headers) => Pair[];

export class Headers {
  /** [lowercase name, value] in insertion order; repeated names are kept as separate entries */
  #list: Pair[] = [];
  /** "sort and combine" of #list, rebuilt lazily after each change */
  #sorted: Pair[] | null = null;
  #guard: HeadersGuard = 'none';

  constructor(init?: HeadersInit) {
    if (init !== undefined) fillHeaders(this, init);
  }

  append(name: string, value: string): void {
    const n = normalizeHeaderName(name);
    const v = normalizeHeaderValue(value);
    this.#checkMutable();
    this.#list.push([n, v]);
    this.#sorted = null;
  }

  delete(name: string): void {
    const n = normalizeHeaderName(name);
    this.#checkMutable();
    const before = this.#list.length;
    this.#list = this.#list.filter((pair) => pair[0] !== n);
    if (this.#list.length !== before) this.#sorted = null;
  }

  get(name: string): string | null {
    const n = normalizeHeaderName(name);
    let result: string | null = null;
    for (const [key, value] of this.#list) {
      if (key === n) result = result === null ? value : `${result}, ${value}`;
    }
    return result;
  }

  /** workerd extension kept for compatibility: only valid for Set-Cookie. */
  getAll(name: string): string[] {
    const n = normalizeHeaderName(name);
    if (n !== 'set-cookie') throw new TypeError('getAll() can only be used with the header name "Set-Cookie".');
    return this.getSetCookie();
  }

  getSetCookie(): string[] {
    const out: string[] = [];
    for (const [key, value] of this.#list) if (key === 'set-cookie') out.push(value);
    return out;
  }

  has(name: string): boolean {
    const n = normalizeHeaderName(name);
    return this.#list.some((pair) => pair[0] === n);
  }

  set(name: string, value: string): void {
    const n = normalizeHeaderName(name);
    const v = normalizeHeaderValue(value);
    this.#checkMutable();
    // Fetch "set": replace the first entry with that name in place, drop the others.
    const index = this.#list.findIndex((pair) => pair[0] === n);
    if (index < 0) {
      this.#list.push([n, v]);
    } else {
      this.#list[index] = [n, v];
      this.#list = this.#list.filter((pair, i) => i <= index || pair[0] !== n);
    }
    this.#sorted = null;
  }

  forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void {
    forEachPair(() => this.#sortAndCombine(), callback, thisArg, this, 'Headers');
  }

  entries(): IterableIterator<[string, string]> {
    return makeIterator(() => this.#sortAndCombine(), 'key+value') as IterableIterator<[string, string]>;
  }

  keys(): IterableIterator<string> {
    return makeIterator(() => this.#sortAndCombine(), 'key') as IterableIterator<string>;
  }

  values(): IterableIterator<string> {
    return makeIterator(() => this.#sortAndCombine(), 'value') as IterableIterator<string>;
  }

  declare [Symbol.iterator]: () => IterableIterator<[string, string]>;

  #checkMutable(): void {
    if (this.#guard === 'immutable') throw new TypeError("Can't modify immutable headers.");
  }

  #sortAndCombine(): Pair[] {
    if (this.#sorted) return this.#sorted;
    const names = [...new Set(this.#list.map((pair) => pair[0]))].sort();
    const out: Pair[] = [];
    for (const name of names) {
      if (name === 'set-cookie') {
        for (const [key, value] of this.#list) if (key === name) out.push([name, value]);
      } else {
        out.push([name, this.get(name) as string]);
      }
    }
    this.#sorted = out;
    return out;
  }

  static {
    guardOf = (headers, guard) => {
      if (guard !== undefined) headers.#guard = guard;
      return headers.#guard;
    };
    listOf = (headers) => headers.#list;
  }
}

aliasIterator(Headers.prototype);
enumerableMembers(Headers);
setToStringTag(Headers, 'Headers');

/** Fetch "fill": append every pair of a HeadersInit (a sequence of pairs or a record). */
export function fillHeaders(headers: Headers, init: unknown): void {
  if (init instanceof Headers) {
    // Fast path (unobservable unless someone patched Headers' iterator): copy the raw list.
    for (const [name, value] of listOf(init)) headers.append(name, value);
    return;
  }
  if (typeof init !== 'object' && typeof init !== 'function') {
    throw new TypeError("Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'.");
  }
  if (init === null) {
    throw new TypeError("Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'.");
  }
  const iteratorMethod = (init as { [Symbol.iterator]?: unknown })[Symbol.iterator];
  if (iteratorMethod !== undefined) {
    if (typeof iteratorMethod !== 'function') throw new TypeError('Headers init: Symbol.iterator is not a function.');
    // WebIDL converts the whole sequence first, then fills.
    const pairs: unknown[][] = [];
    for (const pair of init as Iterable<unknown>) {
      if (typeof pair !== 'object' || pair === null || typeof (pair as Iterable<unknown>)[Symbol.iterator] !== 'function') {
        throw new TypeError('To initialize a Headers object from a sequence, each element must be a sequence.');
      }
      pairs.push([...(pair as Iterable<unknown>)]);
    }
    for (const pair of pairs) {
      if (pair.length !== 2) {
        throw new TypeError('To initialize a Headers object from a sequence, each inner sequence must have exactly two elements.');
      }
      headers.append(pair[0] as string, pair[1] as string);
    }
    return;
  }
  // record<ByteString, ByteString>: own enumerable keys, in [[OwnPropertyKeys]] order.
  const record: Pair[] = [];
  for (const key of Reflect.ownKeys(init)) {
    const desc = Reflect.getOwnPropertyDescriptor(init, key);
    if (!desc?.enumerable) continue;
    record.push([toByteString(key, 'Header name'), toByteString((init as Record<PropertyKey, unknown>)[key], 'Header value')]);
  }
  for (const [name, value] of record) headers.append(name, value);
}

/** Build a Headers with a guard (used by Request/Response). Fills before applying the guard. */
export function createHeaders(init: unknown, guard: HeadersGuard = 'none'): Headers {
  const headers = new Headers();
  if (init !== undefined) fillHeaders(headers, init);
  if (guard !== 'none') guardOf(headers, guard);
  return headers;
}

/** A copy of a Headers' list (not of its sort cache), with the given guard. */
export function copyHeaders(headers: Headers, guard: HeadersGuard = 'none'): Headers {
  const copy = new Headers();
  listOf(copy).push(...listOf(headers).map(([name, value]): Pair => [name, value]));
  if (guard !== 'none') guardOf(copy, guard);
  return copy;
}

export function headersGuard(headers: Headers): HeadersGuard {
  return guardOf(headers);
}
