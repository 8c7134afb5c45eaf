// Validation of KV requests on the host, with the errors Workers KV gives. The KV service runs
// these for every caller (guest, admin API, CLI): the guest is untrusted and checks nothing that
// matters. Messages follow workerd's "KV <METHOD> failed: <status> <detail>" shape, with the
// details Cloudflare's KV API (and miniflare) use, so code that matches on them keeps working.
import { KV_LIMITS } from './protocol.js';
import { decodeCursor, normalizeKey } from './keys.js';

/** The method name workerd puts in the message; list errors read "KV GET failed" there too. */
export type KVMethod = 'GET' | 'GET_BULK' | 'PUT' | 'DELETE';

export class KVError extends Error {
  constructor(
    readonly method: KVMethod,
    /** the HTTP status the KV API answers with; the admin API uses it as is */
    readonly status: number,
    readonly detail: string,
  ) {
    super(`KV ${method} failed: ${status} ${detail}`);
    this.name = 'KVError';
  }
}

export function validateNamespace(namespace: unknown): string {
  if (typeof namespace !== 'string' || namespace === '' || namespace.length > 256) {
    throw new TypeError('KV namespace id must be a non-empty string of at most 256 characters');
  }
  return namespace;
}

export function validateKey(method: KVMethod, key: unknown): string {
  if (typeof key !== 'string') throw new KVError(method, 400, 'Key names must be strings');
  const name = normalizeKey(key);
  if (name === '') throw new KVError(method, 400, 'Key names must not be empty');
  if (name === '.' || name === '..') throw new KVError(method, 400, `Illegal key name "${name}". Please use a different name.`);
  validateKeyLength(method, name);
  return name;
}

function validateKeyLength(method: KVMethod, key: string): void {
  const length = Buffer.byteLength(key, 'utf8');
  if (length > KV_LIMITS.maxKeyBytes) {
    throw new KVError(method, 414, `UTF-8 encoded length of ${length} exceeds key length limit of ${KV_LIMITS.maxKeyBytes}.`);
  }
}

export function validateCacheTtl(method: KVMethod, cacheTtl: unknown): number | undefined {
  if (cacheTtl === undefined || cacheTtl === null) return undefined;
  const ttl = Number(cacheTtl);
  if (!Number.isFinite(ttl) || ttl < KV_LIMITS.minCacheTtl) {
    throw new KVError(method, 400, `Invalid cache_ttl of ${String(cacheTtl)}. Cache TTL must be at least ${KV_LIMITS.minCacheTtl}.`);
  }
  return Math.trunc(ttl);
}

export interface PutOptionsInput {
  expiration?: unknown;
  expirationTtl?: unknown;
  metadata?: unknown;
}

/** Absolute expiration (seconds) and metadata JSON text for a put made at `nowMs`. */
export function validatePutOptions(options: PutOptionsInput, nowMs: number, minExpirationTtl: number): { expiration: number | null; metadata: string | null } {
  const now = Math.floor(nowMs / 1000);
  let expiration: number | null = null;
  if (options.expirationTtl !== undefined && options.expirationTtl !== null) {
    const raw = options.expirationTtl;
    const ttl = Math.trunc(Number(raw));
    if (!Number.isFinite(ttl) || ttl <= 0) {
      throw new KVError('PUT', 400, `Invalid expiration_ttl of ${String(raw)}. Please specify integer greater than 0.`);
    }
    if (ttl < minExpirationTtl) {
      throw new KVError('PUT', 400, `Invalid expiration_ttl of ${String(raw)}. Expiration TTL must be at least ${minExpirationTtl}.`);
    }
    expiration = now + ttl;
  } else if (options.expiration !== undefined && options.expiration !== null) {
    const raw = options.expiration;
    const at = Math.trunc(Number(raw));
    if (!Number.isFinite(at) || at <= now) {
      throw new KVError('PUT', 400, `Invalid expiration of ${String(raw)}. Please specify integer greater than the current number of seconds since the UNIX epoch.`);
    }
    if (at < now + minExpirationTtl) {
      throw new KVError('PUT', 400, `Invalid expiration of ${String(raw)}. Expiration times must be at least ${minExpirationTtl} seconds in the future.`);
    }
    expiration = at;
  }
  let metadata: string | null = null;
  if (options.metadata !== undefined && options.metadata !== null) {
    if (typeof options.metadata !== 'string') throw new KVError('PUT', 400, 'Metadata must be JSON text');
    const length = Buffer.byteLength(options.metadata, 'utf8');
    if (length > KV_LIMITS.maxMetadataBytes) {
      throw new KVError('PUT', 413, `Metadata length of ${length} exceeds limit of ${KV_LIMITS.maxMetadataBytes}.`);
    }
    try {
      JSON.parse(options.metadata);
    } catch {
      throw new KVError('PUT', 400, 'Metadata must be valid JSON');
    }
    metadata = options.metadata;
  }
  return { expiration, metadata };
}

export function validateValueLength(length: number): void {
  if (length > KV_LIMITS.maxValueBytes) {
    throw new KVError('PUT', 413, `Value length of ${length} exceeds limit of ${KV_LIMITS.maxValueBytes}.`);
  }
}

export interface ListInput {
  prefix?: unknown;
  limit?: unknown;
  cursor?: unknown;
}

export function validateListOptions(options: ListInput): { prefix: string; limit: number; after: string | null } {
  let limit: number = KV_LIMITS.maxListKeys;
  if (options.limit !== undefined && options.limit !== null) {
    const raw = options.limit;
    limit = Math.trunc(Number(raw));
    if (!Number.isFinite(limit) || limit < 1) {
      throw new KVError('GET', 400, `Invalid key_count_limit of ${String(raw)}. Please specify an integer greater than 0.`);
    }
    if (limit > KV_LIMITS.maxListKeys) {
      throw new KVError('GET', 400, `Invalid key_count_limit of ${String(raw)}. Please specify an integer less than ${KV_LIMITS.maxListKeys}.`);
    }
  }
  let prefix = '';
  if (options.prefix !== undefined && options.prefix !== null) {
    if (typeof options.prefix !== 'string') throw new KVError('GET', 400, 'prefix must be a string');
    prefix = normalizeKey(options.prefix);
    validateKeyLength('GET', prefix);
  }
  let after: string | null = null;
  if (options.cursor !== undefined && options.cursor !== null && options.cursor !== '') {
    after = typeof options.cursor === 'string' ? decodeCursor(options.cursor) : null;
    if (after === null) throw new KVError('GET', 400, 'Invalid cursor');
  }
  return { prefix, limit, after };
}

export function validateBulkKeys(keys: unknown): string[] {
  if (!Array.isArray(keys)) throw new KVError('GET_BULK', 400, 'keys must be an array');
  if (keys.length > KV_LIMITS.maxBulkKeys) throw new KVError('GET_BULK', 400, `You can request a maximum of ${KV_LIMITS.maxBulkKeys} keys`);
  if (keys.length < 1) throw new KVError('GET_BULK', 400, 'You must request a minimum of 1 key');
  return keys.map((key) => validateKey('GET_BULK', key));
}
