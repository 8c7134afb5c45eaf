// The Cache API as Workers has it: `caches.default` and `await caches.open(name)`, each a Cache
// with put/match/delete. The HTTP rules (what is stored, for how long, conditional and ranged
// answers) are applied on the host (bindings/cache/policy.ts); here the request and response are
// taken apart for the wire, and workerd's own TypeErrors are raised with the caller's stack.
import { hostCall } from '../bridge.js';
import { Request } from '../api/request.js';
import { Response } from '../api/response.js';
import { OPS } from '../../protocol/wall.js';
import type { WireCacheRequest, WireCacheResponse } from '../../bindings/cache/protocol.js';

const constructToken = Symbol('Cache');
const names = new WeakMap<object, string>();

function illegal(): never {
  throw new TypeError('Illegal constructor');
}

function headerPairs(headers: Iterable<[string, string]>): [string, string][] {
  const pairs: [string, string][] = [];
  for (const [name, value] of headers) pairs.push([name, value]);
  return pairs;
}

function wireRequest(input: unknown): WireCacheRequest {
  const request = input instanceof Request ? input : new Request(input as string);
  return { url: request.url, method: request.method, headers: headerPairs(request.headers as unknown as Iterable<[string, string]>) };
}

function ignoreMethodOf(options: unknown): boolean {
  return !!(options && typeof options === 'object' && (options as { ignoreMethod?: unknown }).ignoreMethod);
}

/** Host errors arrive as copies: rebuilt here so `instanceof` holds in the worker's realm. */
function rethrow(error: unknown): never {
  const e = error as { name?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(error);
  if (e?.name === 'TypeError') throw new TypeError(message);
  if (e?.name === 'RangeError') throw new RangeError(message);
  throw new Error(message);
}

function nameOf(cache: object): string {
  const name = names.get(cache);
  if (name === undefined) throw new TypeError('Illegal invocation');
  return name;
}

class Cache {
  constructor(token?: unknown, name?: string) {
    if (token !== constructToken) illegal();
    names.set(this, name!);
  }

  async match(request: unknown, options?: unknown): Promise<Response | undefined> {
    const name = nameOf(this);
    const wire = wireRequest(request);
    let stored: WireCacheResponse | null;
    try {
      stored = await hostCall<WireCacheResponse | null>(OPS.cache.match, name, wire, ignoreMethodOf(options));
    } catch (error) {
      rethrow(error);
    }
    if (!stored) return undefined;
    return new Response(stored.body, { status: stored.status, headers: stored.headers });
  }

  async put(request: unknown, response: unknown): Promise<void> {
    const name = nameOf(this);
    const wire = wireRequest(request);
    if (!(response instanceof Response)) throw new TypeError("Failed to execute 'put' on 'Cache': parameter 2 is not of type 'Response'.");
    if (wire.method !== 'GET') throw new TypeError('Cannot cache response to non-GET request.');
    if (response.status === 206) throw new TypeError('Cannot cache response to a range request (206 Partial Content).');
    const vary = response.headers.get('vary');
    if (vary !== null && vary.split(',').some((v) => v.trim() === '*')) throw new TypeError("Cannot cache response with 'Vary: *' header.");
    if (response.bodyUsed) throw new TypeError('Body has already been used. It can only be used once. Use tee() first if you need to read it twice.');
    const body = response.body === null ? null : await response.arrayBuffer();
    const stored: WireCacheResponse = { status: response.status, headers: headerPairs(response.headers as unknown as Iterable<[string, string]>), body };
    try {
      await hostCall(OPS.cache.put, name, wire, stored);
    } catch (error) {
      rethrow(error);
    }
  }

  async delete(request: unknown, options?: unknown): Promise<boolean> {
    const name = nameOf(this);
    const wire = wireRequest(request);
    try {
      return await hostCall<boolean>(OPS.cache.delete, name, wire, ignoreMethodOf(options));
    } catch (error) {
      rethrow(error);
    }
  }
}

const defaultCache = new Cache(constructToken, '');

class CacheStorage {
  constructor(token?: unknown) {
    if (token !== constructToken) illegal();
  }

  get default(): Cache {
    return defaultCache;
  }

  async open(cacheName: unknown): Promise<Cache> {
    return new Cache(constructToken, `named:${String(cacheName)}`);
  }
}

export default function install() {
  return { globals: { caches: new CacheStorage(constructToken), Cache, CacheStorage } };
}
