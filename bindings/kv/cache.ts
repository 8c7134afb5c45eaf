// The host's read cache in front of a KV backend: an LRU bounded in entries and in bytes, whose
// entries live for the reader's cacheTtl (or the default), and which this process's own writes
// invalidate, as do writes made by cinder serve's other processes and nodes (announced on its bus:
// KVService.dropCached). It is what makes a hot key cheap; the TTL bounds staleness when an
// announcement is missed, or the write was made outside the server.
//
// Misses are cached too, as Workers KV does: a key created on another node after a miss was
// cached appears within the TTL, like any other remote write.
import { LRUCache } from 'lru-cache';
import { isExpired, type StoredEntry } from './backend.js';

export interface ReadCacheOptions {
  /** most entries held (default 10,000) */
  maxEntries?: number;
  /** most bytes of values, keys and metadata held (default 64 MiB) */
  maxBytes?: number;
  /** values larger than this are never cached (default 1 MiB) */
  maxEntryBytes?: number;
  /** how long a read is reused when the reader gives no cacheTtl, in seconds (default 60) */
  defaultTtlSeconds?: number;
}

interface Cached {
  entry: StoredEntry | null;
  /** service clock (ms) when the read was made */
  at: number;
}

// Per-entry bookkeeping (LRU node, key string, object headers) so that a flood of tiny or
// missing values is bounded by bytes as well as by count.
const ENTRY_OVERHEAD = 96;

export class ReadCache {
  readonly defaultTtlMs: number;
  hits = 0;
  misses = 0;
  private readonly lru: LRUCache<string, Cached>;
  /** reads in flight, by cache key: only the latest, and only if no write intervened, may fill */
  private readonly pending = new Map<string, symbol>();

  constructor(
    options: ReadCacheOptions,
    private readonly clock: () => number,
  ) {
    this.defaultTtlMs = (options.defaultTtlSeconds ?? 60) * 1000;
    this.lru = new LRUCache<string, Cached>({
      max: options.maxEntries ?? 10_000,
      maxSize: options.maxBytes ?? 64 * 1024 * 1024,
      maxEntrySize: options.maxEntryBytes ?? 1024 * 1024,
      sizeCalculation: (cached, key) => ENTRY_OVERHEAD + key.length * 2 + (cached.entry ? cached.entry.value.length + (cached.entry.metadata?.length ?? 0) * 2 : 0),
      // Expiry by the service's clock, so that tests with a fake clock see what production sees.
      ttl: this.defaultTtlMs,
      perf: { now: clock },
    });
  }

  private static key(namespace: string, key: string): string {
    return `${namespace}\u0000${key}`;
  }

  /** A cached read no older than `maxAgeMs` whose value has not expired, or undefined. */
  get(namespace: string, key: string, maxAgeMs: number): Cached | undefined {
    const cacheKey = ReadCache.key(namespace, key);
    const cached = this.lru.get(cacheKey);
    const now = this.clock();
    if (!cached || now - cached.at > maxAgeMs) {
      this.misses++;
      return undefined;
    }
    if (cached.entry && isExpired(cached.entry.expiration, now)) {
      this.lru.delete(cacheKey);
      this.misses++;
      return undefined;
    }
    this.hits++;
    return cached;
  }

  /** Note that a backend read is starting; pass the token to fill() when it is done. */
  begin(namespace: string, key: string): symbol {
    const token = Symbol();
    this.pending.set(ReadCache.key(namespace, key), token);
    return token;
  }

  /** Cache a finished read, unless a write to the key happened while it was in flight (then
   *  the value may be older than the write, and caching it would break read-your-writes). */
  fill(namespace: string, key: string, token: symbol, entry: StoredEntry | null, at: number, ttlMs: number): void {
    const cacheKey = ReadCache.key(namespace, key);
    if (this.pending.get(cacheKey) !== token) return;
    this.pending.delete(cacheKey);
    this.lru.set(cacheKey, { entry, at }, { ttl: ttlMs });
  }

  /** A read failed: forget it, if it is still the latest one for its key. */
  abandon(namespace: string, key: string, token: symbol): void {
    const cacheKey = ReadCache.key(namespace, key);
    if (this.pending.get(cacheKey) === token) this.pending.delete(cacheKey);
  }

  /** A write on this node: drop the cached read and disown reads in flight. */
  invalidate(namespace: string, key: string): void {
    const cacheKey = ReadCache.key(namespace, key);
    this.lru.delete(cacheKey);
    this.pending.delete(cacheKey);
  }

  get size(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  clear(): void {
    this.lru.clear();
    this.pending.clear();
  }
}
