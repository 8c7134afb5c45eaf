// The host half of the Cache API (caches.default, caches.open): the cache.* ops behind
// sandbox/addons/cache.ts. Caches belong to the calling worker's account (every worker of one
// account shares caches.default, as the workers of one zone do on Cloudflare); nothing a guest
// sends can name another account's. Every argument is checked here, the stored bytes are bounded
// per entry and per namespace, and calls count against the invocation like KV's.
import { OpAllowance, type OpCall, type OpRegistry } from '../../src/runtime/contract.js';
import { OPS } from '../../protocol/wall.js';
import { MAX_CACHE_NAME_LENGTH, type WireCacheRequest, type WireCacheResponse } from './protocol.js';
import { answer, storable, varyKey, varyMatches, type HeaderList } from './policy.js';
import type { CacheStore } from './store.js';

export interface CacheHostOptions {
  /** largest response body one entry may hold (Cloudflare: 512 MB; bounded lower by default) */
  maxEntryBytes?: number;
  /** cache calls one invocation may make */
  maxOpsPerInvocation?: number;
  now?: () => number;
}

export const DEFAULT_MAX_ENTRY_BYTES = 32 * 1024 * 1024;
const MAX_URL_LENGTH = 16 * 1024;
const MAX_HEADERS = 256;
const MAX_HEADER_BYTES = 128 * 1024;

function namespaceOf(call: OpCall, name: unknown): string {
  if (typeof name !== 'string' || name.length > MAX_CACHE_NAME_LENGTH) throw new TypeError('Invalid cache name');
  return `${call.worker.account ?? ''}\n${name}`;
}

function headerList(raw: unknown): HeaderList {
  if (!Array.isArray(raw) || raw.length > MAX_HEADERS) throw new TypeError('Invalid headers');
  let bytes = 0;
  return raw.map((pair) => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') throw new TypeError('Invalid headers');
    bytes += pair[0].length + pair[1].length;
    if (bytes > MAX_HEADER_BYTES) throw new TypeError('Headers too large to cache');
    return [pair[0], pair[1]] as [string, string];
  });
}

function requestOf(raw: unknown): WireCacheRequest {
  const r = raw as WireCacheRequest | null;
  if (!r || typeof r !== 'object' || typeof r.url !== 'string' || typeof r.method !== 'string') throw new TypeError('Invalid cache request');
  if (r.url.length > MAX_URL_LENGTH) throw new TypeError('Cache key URL too long');
  let url: URL;
  try {
    url = new URL(r.url);
  } catch {
    throw new TypeError('Invalid cache key URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('Cache keys must be http or https URLs');
  url.hash = '';
  return { url: url.href, method: r.method.toUpperCase(), headers: headerList(r.headers) };
}

function arrayBufferOf(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

export function installCache(registry: OpRegistry, store: CacheStore, options: CacheHostOptions = {}): void {
  const maxEntryBytes = options.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  const maxOps = options.maxOpsPerInvocation ?? 1000;
  const now = options.now ?? Date.now;
  const allowance = new OpAllowance(maxOps);
  const meter = (call: OpCall) => allowance.take(call);

  registry.registerOp(OPS.cache.match, async (call, [name, rawRequest, ignoreMethod]): Promise<WireCacheResponse | null> => {
    const namespace = namespaceOf(call, name);
    const request = requestOf(rawRequest);
    meter(call);
    if (request.method !== 'GET' && ignoreMethod !== true) return null;
    const at = now();
    const hit = store.variants(namespace, request.url, at).find((variant) => varyMatches(variant.vary, request.headers));
    if (!hit) return null;
    store.touch(hit.id, at);
    const answered = answer(hit, request.headers);
    return { status: answered.status, headers: answered.headers, body: answered.body ? arrayBufferOf(answered.body) : null };
  });

  registry.registerOp(OPS.cache.put, async (call, [name, rawRequest, rawResponse]) => {
    const namespace = namespaceOf(call, name);
    const request = requestOf(rawRequest);
    meter(call);
    const response = rawResponse as WireCacheResponse | null;
    if (!response || typeof response !== 'object' || !Number.isInteger(response.status) || response.status < 200 || response.status > 599) {
      throw new TypeError('Invalid response to cache');
    }
    // The guest refuses these first, with workerd's messages; a guest that skips its own checks
    // gets the same answer here.
    if (request.method !== 'GET') throw new TypeError('Cannot cache response to non-GET request.');
    if (response.status === 206) throw new TypeError('Cannot cache response to a range request (206 Partial Content).');
    const headers = headerList(response.headers);
    const vary = varyKey(headers, request.headers);
    if (vary === null) throw new TypeError("Cannot cache response with 'Vary: *' header.");
    if (!(response.body instanceof ArrayBuffer) && response.body !== null) throw new TypeError('Invalid response body to cache');
    const body = response.body ? Buffer.from(response.body) : Buffer.alloc(0);
    if (body.byteLength > maxEntryBytes) throw new RangeError(`Response body too large to cache (${body.byteLength} bytes; the limit is ${maxEntryBytes})`);
    const at = now();
    const decision = storable(response.status, headers, at);
    if (!decision) return;
    store.put(namespace, request.url, { status: response.status, headers: decision.headers, body, vary, expiresAt: at + decision.ttl * 1000, storedAt: at });
  });

  registry.registerOp(OPS.cache.delete, async (call, [name, rawRequest, ignoreMethod]) => {
    const namespace = namespaceOf(call, name);
    const request = requestOf(rawRequest);
    meter(call);
    if (request.method !== 'GET' && ignoreMethod !== true) return false;
    return store.removeUrl(namespace, request.url);
  });
}
