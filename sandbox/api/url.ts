// URL and URLSearchParams (WHATWG URL Standard). Parsing, serialization and the setters' state
// overrides come from whatwg-url's spec-tracking state machine; the interface layer is ours
// because whatwg-url's generated WebIDL wrappers (plus webidl-conversions) would add ~35 KB to
// every isolate for argument conversions we do in a few lines. Its IDNA and legacy-encoding
// dependencies are swapped for small shims at bundle time: see idna.ts, url-encoding-shim.ts and
// scripts/build-sandbox.mjs.
import usm, { type URLRecord } from 'whatwg-url/lib/url-state-machine.js';
import urlencoded from 'whatwg-url/lib/urlencoded.js';
import { aliasIterator, enumerableMembers, forEachPair, pairIteratorFactory, toUSVString } from './fetch-idl.js';
import { requireArgs, setToStringTag } from './idl.js';
import { fastParse } from './url-fast-path.js';

type Pair = [name: string, value: string];

/** Parse `input` against an optional base (both already USVStrings); null on failure. Canonical
 *  absolute URLs skip the state machine (see url-fast-path.ts). */
export function parseURL(input: string, base?: string): URLRecord | null {
  let parsedBase: URLRecord | null = null;
  if (base !== undefined) {
    parsedBase = fastParse(base) ?? usm.basicURLParse(base);
    if (parsedBase === null) return null;
  }
  return fastParse(input) ?? usm.basicURLParse(input, { baseURL: parsedBase });
}

export const serializeURL = usm.serializeURL;

// --- URLSearchParams -----------------------------------------------------------------------------

const makeParamsIterator = pairIteratorFactory<string, string>('URLSearchParams');

// Module-private hooks between URL and its URLSearchParams (set in the static block).
let linkParams: (params: URLSearchParams, url: URLRecordHolder) => void;
let replaceParamsList: (params: URLSearchParams, list: Pair[]) => void;

/** What a URLSearchParams needs from the URL it belongs to. */
interface URLRecordHolder {
  record(): URLRecord;
}

export class URLSearchParams {
  #list: Pair[] = [];
  #url: URLRecordHolder | null = null;

  constructor(init: unknown = '') {
    if ((typeof init === 'object' && init !== null) || typeof init === 'function') {
      const iteratorMethod = (init as { [Symbol.iterator]?: unknown })[Symbol.iterator];
      if (iteratorMethod !== undefined) {
        if (typeof iteratorMethod !== 'function') throw new TypeError("Failed to construct 'URLSearchParams': Symbol.iterator is not a function.");
        for (const pair of init as Iterable<unknown>) {
          if ((typeof pair !== 'object' || pair === null) && typeof pair !== 'function') {
            throw new TypeError("Failed to construct 'URLSearchParams': The provided value cannot be converted to a sequence.");
          }
          const items = [...(pair as Iterable<unknown>)];
          if (items.length !== 2) {
            throw new TypeError("Failed to construct 'URLSearchParams': Sequence initializer must only contain pair elements.");
          }
          this.#list.push([toUSVString(items[0]), toUSVString(items[1])]);
        }
      } else {
        // record<USVString, USVString>: own enumerable keys; a key seen twice keeps its first slot.
        const record = new Map<string, string>();
        for (const key of Reflect.ownKeys(init)) {
          if (!Reflect.getOwnPropertyDescriptor(init, key)?.enumerable) continue;
          record.set(toUSVString(key), toUSVString((init as Record<PropertyKey, unknown>)[key]));
        }
        this.#list = [...record];
      }
    } else {
      const query = toUSVString(init);
      this.#list = urlencoded.parseUrlencodedString(query.charCodeAt(0) === 0x3f ? query.slice(1) : query);
    }
  }

  get size(): number {
    return this.#list.length;
  }

  append(name: string, value: string): void {
    requireArgs(arguments.length, 2, "Failed to execute 'append' on 'URLSearchParams'");
    this.#list.push([toUSVString(name), toUSVString(value)]);
    this.#update();
  }

  delete(name: string, value?: string): void {
    requireArgs(arguments.length, 1, "Failed to execute 'delete' on 'URLSearchParams'");
    const n = toUSVString(name);
    const v = value === undefined ? undefined : toUSVString(value);
    this.#list = this.#list.filter(([key, val]) => key !== n || (v !== undefined && val !== v));
    this.#update();
  }

  get(name: string): string | null {
    requireArgs(arguments.length, 1, "Failed to execute 'get' on 'URLSearchParams'");
    const n = toUSVString(name);
    const found = this.#list.find((pair) => pair[0] === n);
    return found ? found[1] : null;
  }

  getAll(name: string): string[] {
    requireArgs(arguments.length, 1, "Failed to execute 'getAll' on 'URLSearchParams'");
    const n = toUSVString(name);
    return this.#list.filter((pair) => pair[0] === n).map((pair) => pair[1]);
  }

  has(name: string, value?: string): boolean {
    requireArgs(arguments.length, 1, "Failed to execute 'has' on 'URLSearchParams'");
    const n = toUSVString(name);
    const v = value === undefined ? undefined : toUSVString(value);
    return this.#list.some(([key, val]) => key === n && (v === undefined || val === v));
  }

  set(name: string, value: string): void {
    requireArgs(arguments.length, 2, "Failed to execute 'set' on 'URLSearchParams'");
    const n = toUSVString(name);
    const v = toUSVString(value);
    const index = this.#list.findIndex((pair) => pair[0] === n);
    if (index < 0) {
      this.#list.push([n, v]);
    } else {
      this.#list[index] = [n, v];
      this.#list = this.#list.filter((pair, i) => i <= index || pair[0] !== n);
    }
    this.#update();
  }

  /** Stable sort by name, comparing UTF-16 code units (not code points), as the spec says. */
  sort(): void {
    this.#list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.#update();
  }

  forEach(callback: (value: string, name: string, params: URLSearchParams) => void, thisArg?: unknown): void {
    forEachPair(() => this.#list, callback, thisArg, this, 'URLSearchParams');
  }

  entries(): IterableIterator<[string, string]> {
    return makeParamsIterator(() => this.#list, 'key+value') as IterableIterator<[string, string]>;
  }

  keys(): IterableIterator<string> {
    return makeParamsIterator(() => this.#list, 'key') as IterableIterator<string>;
  }

  values(): IterableIterator<string> {
    return makeParamsIterator(() => this.#list, 'value') as IterableIterator<string>;
  }

  toString(): string {
    return urlencoded.serializeUrlencoded(this.#list);
  }

  declare [Symbol.iterator]: () => IterableIterator<[string, string]>;

  /** The URL Standard's "update" steps: write the list back into the owning URL's query. */
  #update(): void {
    if (!this.#url) return;
    const url = this.#url.record();
    const serialized = urlencoded.serializeUrlencoded(this.#list);
    url.query = serialized === '' ? null : serialized;
  }

  static {
    linkParams = (params, url) => {
      params.#url = url;
    };
    replaceParamsList = (params, list) => {
      params.#list = list;
    };
  }
}

aliasIterator(URLSearchParams.prototype);
enumerableMembers(URLSearchParams);
setToStringTag(URLSearchParams, 'URLSearchParams');

// --- URL -----------------------------------------------------------------------------------------

export class URL {
  #url: URLRecord;
  /** created on first access to searchParams (then kept: it is [SameObject]) */
  #query: URLSearchParams | null = null;

  constructor(url: string | URL, base?: string | URL) {
    requireArgs(arguments.length, 1, "Failed to construct 'URL'");
    const parsed = parseURL(toUSVString(url), base === undefined ? undefined : toUSVString(base));
    // Same message as workerd; `cause`-free so that it reads well in logs.
    if (parsed === null) throw new TypeError('Invalid URL string.');
    this.#url = parsed;
  }

  static canParse(url: string, base?: string): boolean {
    requireArgs(arguments.length, 1, "Failed to execute 'canParse' on 'URL'");
    return parseURL(toUSVString(url), base === undefined ? undefined : toUSVString(base)) !== null;
  }

  static parse(url: string, base?: string): URL | null {
    requireArgs(arguments.length, 1, "Failed to execute 'parse' on 'URL'");
    return tryConstructURL(url, base);
  }

  get href(): string {
    return usm.serializeURL(this.#url);
  }

  set href(value: string) {
    const parsed = parseURL(toUSVString(value));
    if (parsed === null) throw new TypeError('Invalid URL string.');
    this.#url = parsed;
    this.#resetQueryList();
  }

  get origin(): string {
    return usm.serializeURLOrigin(this.#url);
  }

  get protocol(): string {
    return `${this.#url.scheme}:`;
  }

  set protocol(value: string) {
    usm.basicURLParse(`${toUSVString(value)}:`, { url: this.#url, stateOverride: 'scheme start' });
  }

  get username(): string {
    return this.#url.username;
  }

  set username(value: string) {
    const v = toUSVString(value);
    if (usm.cannotHaveAUsernamePasswordPort(this.#url)) return;
    usm.setTheUsername(this.#url, v);
  }

  get password(): string {
    return this.#url.password;
  }

  set password(value: string) {
    const v = toUSVString(value);
    if (usm.cannotHaveAUsernamePasswordPort(this.#url)) return;
    usm.setThePassword(this.#url, v);
  }

  get host(): string {
    const { host, port } = this.#url;
    if (host === null) return '';
    return port === null ? usm.serializeHost(host) : `${usm.serializeHost(host)}:${port}`;
  }

  set host(value: string) {
    const v = toUSVString(value);
    if (usm.hasAnOpaquePath(this.#url)) return;
    usm.basicURLParse(v, { url: this.#url, stateOverride: 'host' });
  }

  get hostname(): string {
    return this.#url.host === null ? '' : usm.serializeHost(this.#url.host);
  }

  set hostname(value: string) {
    const v = toUSVString(value);
    if (usm.hasAnOpaquePath(this.#url)) return;
    usm.basicURLParse(v, { url: this.#url, stateOverride: 'hostname' });
  }

  get port(): string {
    return this.#url.port === null ? '' : String(this.#url.port);
  }

  set port(value: string) {
    const v = toUSVString(value);
    if (usm.cannotHaveAUsernamePasswordPort(this.#url)) return;
    if (v === '') this.#url.port = null;
    else usm.basicURLParse(v, { url: this.#url, stateOverride: 'port' });
  }

  get pathname(): string {
    return usm.serializePath(this.#url);
  }

  set pathname(value: string) {
    const v = toUSVString(value);
    if (usm.hasAnOpaquePath(this.#url)) return;
    this.#url.path = [];
    usm.basicURLParse(v, { url: this.#url, stateOverride: 'path start' });
  }

  get search(): string {
    const { query } = this.#url;
    return query === null || query === '' ? '' : `?${query}`;
  }

  set search(value: string) {
    const v = toUSVString(value);
    const url = this.#url;
    if (v === '') {
      url.query = null;
      if (this.#query) replaceParamsList(this.#query, []);
      return;
    }
    const input = v[0] === '?' ? v.slice(1) : v;
    url.query = '';
    usm.basicURLParse(input, { url, stateOverride: 'query' });
    if (this.#query) replaceParamsList(this.#query, urlencoded.parseUrlencodedString(input));
  }

  get searchParams(): URLSearchParams {
    if (!this.#query) {
      const params = new URLSearchParams();
      replaceParamsList(params, this.#url.query === null ? [] : urlencoded.parseUrlencodedString(this.#url.query));
      // A closure over `this`, not the record: href= replaces the record object.
      linkParams(params, { record: () => this.#url });
      this.#query = params;
    }
    return this.#query;
  }

  get hash(): string {
    const { fragment } = this.#url;
    return fragment === null || fragment === '' ? '' : `#${fragment}`;
  }

  set hash(value: string) {
    const v = toUSVString(value);
    if (v === '') {
      this.#url.fragment = null;
      return;
    }
    const input = v[0] === '#' ? v.slice(1) : v;
    this.#url.fragment = '';
    usm.basicURLParse(input, { url: this.#url, stateOverride: 'fragment' });
  }

  toString(): string {
    return this.href;
  }

  toJSON(): string {
    return this.href;
  }

  #resetQueryList(): void {
    if (!this.#query) return;
    const { query } = this.#url;
    replaceParamsList(this.#query, query === null ? [] : urlencoded.parseUrlencodedString(query));
  }
}

enumerableMembers(URL);
setToStringTag(URL, 'URL');

// Outside the class body on purpose: esbuild emits a class that names itself inside its own body
// as `var URL = class _URL`, which only its keepNames option turns back into "URL".
function tryConstructURL(url: string, base?: string): URL | null {
  try {
    return new URL(url, base);
  } catch {
    return null;
  }
}
