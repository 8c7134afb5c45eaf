// What crosses the wall for the Cache API (bindings/cache): the guest sends the request's key
// parts and, for put, the response whole; the host answers a stored response or null.

/** A request as the cache sees it: the URL is the key, the headers choose a Vary variant and
 *  carry conditions (If-None-Match, If-Modified-Since, Range). */
export interface WireCacheRequest {
  url: string;
  method: string;
  headers: [string, string][];
}

/** A response to store (put) or a stored one (match). */
export interface WireCacheResponse {
  status: number;
  headers: [string, string][];
  /** null for a 304 answer and for a stored empty body read with HEAD semantics */
  body: ArrayBuffer | null;
}

/** cache.* ops: (cacheName, ...) -- cacheName "" is caches.default. */
export type CacheMatchArgs = [cacheName: string, request: WireCacheRequest, ignoreMethod: boolean];
export type CachePutArgs = [cacheName: string, request: WireCacheRequest, response: WireCacheResponse];
export type CacheDeleteArgs = [cacheName: string, request: WireCacheRequest, ignoreMethod: boolean];

/** Cloudflare's bound on a cache name is not documented; this one keeps keys small. */
export const MAX_CACHE_NAME_LENGTH = 1024;
