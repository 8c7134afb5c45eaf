// The KV service: the one object that the guest's op handlers, the admin API and the CLI call.
// It validates (limits and errors as on Workers), keeps the read cache coherent with this node's
// writes, computes expirations from its clock and sweeps expired entries out of the backend.
//
// Consistency it gives (docs/kv.md): on one node, a read that starts after a write has resolved
// sees that write (read-your-writes); writes made by other nodes (or by another process on the
// same SQLite file) are seen once this node's cached read of the key is older than the reader's
// cacheTtl (default 60 s).
import type { KVBackend, StoredEntry } from './backend.js';
import { ReadCache, type ReadCacheOptions } from './cache.js';
import { encodeCursor } from './keys.js';
import { KV_LIMITS } from './protocol.js';
import {
  KVError,
  validateBulkKeys,
  validateCacheTtl,
  validateKey,
  validateListOptions,
  validateNamespace,
  validatePutOptions,
  validateValueLength,
  type ListInput,
  type PutOptionsInput,
} from './validate.js';

export interface KVServiceOptions {
  backend: KVBackend;
  /** read cache settings, or false for none */
  cache?: ReadCacheOptions | false;
  /** smallest expirationTtl accepted, in seconds (Workers: 60); lower it so tests need not wait */
  minExpirationTtl?: number;
  /** ms since the epoch; injectable for tests */
  clock?: () => number;
  /** how often expired entries are purged from the backend, in ms; 0 turns the sweeper off */
  sweepIntervalMs?: number;
  onSweepError?: (error: unknown) => void;
  /** a write on this service was applied: other processes and nodes drop their cached read of
   *  the key (cinder serve sends it on its bus; see src/app/scale.ts) */
  onWrite?: (namespace: string, key: string) => void;
}

export interface KVRead extends StoredEntry {
  cacheStatus: 'HIT' | 'MISS';
}

export interface KVListResult {
  keys: { name: string; expiration?: number; metadata?: string }[];
  list_complete: boolean;
  cursor?: string;
}

export type KVValueInput = string | Uint8Array;

export class KVService {
  readonly backend: KVBackend;
  readonly cache: ReadCache | null;
  readonly minExpirationTtl: number;
  readonly clock: () => number;
  private readonly sweeper: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly onWrite: KVServiceOptions['onWrite'];

  constructor(options: KVServiceOptions) {
    this.backend = options.backend;
    this.onWrite = options.onWrite;
    this.clock = options.clock ?? Date.now;
    this.cache = options.cache === false ? null : new ReadCache(options.cache ?? {}, this.clock);
    this.minExpirationTtl = options.minExpirationTtl ?? KV_LIMITS.minExpirationTtl;
    const every = options.sweepIntervalMs ?? 60_000;
    if (every > 0) {
      this.sweeper = setInterval(() => {
        this.sweep().catch((error) => options.onSweepError?.(error));
      }, every);
      this.sweeper.unref();
    }
  }

  /** `fresh` skips the cache (the admin API and CLI read what the backend holds now). */
  async get(namespace: string, key: unknown, options: { cacheTtl?: unknown; fresh?: boolean } = {}): Promise<KVRead | null> {
    validateNamespace(namespace);
    const name = validateKey('GET', key);
    const cacheTtl = validateCacheTtl('GET', options.cacheTtl);
    if (options.fresh) {
      const entry = await this.backend.get(namespace, name, this.clock());
      return entry ? { ...entry, cacheStatus: 'MISS' } : null;
    }
    const [read] = await this.read(namespace, [name], cacheTtl);
    return read;
  }

  /** Bulk get: one result per distinct key, in the order first given. */
  async getBulk(namespace: string, keys: unknown, options: { cacheTtl?: unknown } = {}): Promise<[string, KVRead | null][]> {
    validateNamespace(namespace);
    const names = [...new Set(validateBulkKeys(keys))];
    const cacheTtl = validateCacheTtl('GET_BULK', options.cacheTtl);
    const reads = await this.read(namespace, names, cacheTtl);
    let total = 0;
    for (const read of reads) total += read ? read.value.length : 0;
    if (total > KV_LIMITS.maxBulkBytes) {
      throw new KVError('GET_BULK', 413, `Total size of request exceeds the limit of ${KV_LIMITS.maxBulkBytes / 1024 / 1024}MB`);
    }
    return names.map((name, i) => [name, reads[i]]);
  }

  /** Cached reads where fresh enough for `cacheTtl`, one backend round trip for the rest. */
  private async read(namespace: string, keys: string[], cacheTtl: number | undefined): Promise<(KVRead | null)[]> {
    const cache = this.cache;
    const out: (KVRead | null)[] = new Array(keys.length).fill(null);
    const missing: number[] = [];
    const maxAgeMs = cache ? (cacheTtl !== undefined ? cacheTtl * 1000 : cache.defaultTtlMs) : 0;
    keys.forEach((key, i) => {
      const hit = cache?.get(namespace, key, maxAgeMs);
      if (hit) out[i] = hit.entry ? { ...hit.entry, cacheStatus: 'HIT' } : null;
      else missing.push(i);
    });
    if (missing.length === 0) return out;
    const tokens = cache ? missing.map((i) => cache.begin(namespace, keys[i])) : [];
    const at = this.clock();
    let entries: (StoredEntry | null)[];
    try {
      entries = missing.length === 1 ? [await this.backend.get(namespace, keys[missing[0]], at)] : await this.backend.getMany(namespace, missing.map((i) => keys[i]), at);
    } catch (error) {
      if (cache) missing.forEach((i, n) => cache.abandon(namespace, keys[i], tokens[n]));
      throw error;
    }
    missing.forEach((i, n) => {
      const entry = entries[n];
      cache?.fill(namespace, keys[i], tokens[n], entry, at, maxAgeMs);
      out[i] = entry ? { ...entry, cacheStatus: 'MISS' } : null;
    });
    return out;
  }

  async put(namespace: string, key: unknown, value: KVValueInput, options: PutOptionsInput = {}): Promise<void> {
    validateNamespace(namespace);
    const name = validateKey('PUT', key);
    const { expiration, metadata } = validatePutOptions(options, this.clock(), this.minExpirationTtl);
    let bytes: Buffer;
    if (typeof value === 'string') {
      validateValueLength(Buffer.byteLength(value, 'utf8'));
      bytes = Buffer.from(value, 'utf8');
    } else if (value instanceof Uint8Array) {
      validateValueLength(value.byteLength);
      bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    } else {
      throw new KVError('PUT', 400, 'Values must be strings or bytes');
    }
    await this.write(namespace, name, () => this.backend.put(namespace, name, { value: bytes, metadata, expiration }));
  }

  async delete(namespace: string, key: unknown): Promise<void> {
    validateNamespace(namespace);
    const name = validateKey('DELETE', key);
    await this.write(namespace, name, () => this.backend.delete(namespace, name));
  }

  // Invalidate before (no new read may be served the old cached value while the write runs) and
  // after (a read that began during the write may have cached what it replaced).
  private async write(namespace: string, key: string, apply: () => Promise<void>): Promise<void> {
    this.cache?.invalidate(namespace, key);
    try {
      await apply();
    } finally {
      this.cache?.invalidate(namespace, key);
    }
    this.onWrite?.(namespace, key);
  }

  /** Another process or node wrote the key: a cached read of it here is stale. */
  dropCached(namespace: string, key: string): void {
    this.cache?.invalidate(namespace, key);
  }

  /** Keys in UTF-8 byte order; list results are not cached (as on Workers, they may lag). */
  async list(namespace: string, options: ListInput = {}): Promise<KVListResult> {
    validateNamespace(namespace);
    const { prefix, limit, after } = validateListOptions(options);
    const page = await this.backend.list(namespace, { prefix, after, limit, now: this.clock() });
    const keys = page.keys.map((entry) => {
      const key: KVListResult['keys'][number] = { name: entry.name };
      if (entry.expiration !== null) key.expiration = entry.expiration;
      if (entry.metadata !== null) key.metadata = entry.metadata;
      return key;
    });
    if (!page.truncated) return { keys, list_complete: true };
    return { keys, list_complete: false, cursor: encodeCursor(page.keys[page.keys.length - 1].name) };
  }

  /** Purge expired entries from the backend now (the sweeper does this periodically). */
  async sweep(): Promise<number> {
    if (this.closed) return 0;
    return this.backend.purgeExpired(this.clock());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.cache?.clear();
    await this.backend.close();
  }
}
