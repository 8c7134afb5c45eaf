// The storage gateway every KV backend implements (memory, SQLite, Redis). Backends store and
// fetch; they do not validate, cache or decide policy: the KVService in front of them does, once,
// for the guest, the admin API and the CLI alike. Times are passed in (ms since the epoch) so
// that the service's clock is the only clock, and a backend never returns an entry whose
// expiration has passed even before its cleanup has run.

export interface StoredEntry {
  value: Buffer;
  /** the JSON text the metadata was stored as, or null */
  metadata: string | null;
  /** seconds since the epoch, as Workers KV reports it, or null for never */
  expiration: number | null;
}

export interface ListedKey {
  name: string;
  expiration: number | null;
  metadata: string | null;
}

export interface ListQuery {
  /** '' for no prefix */
  prefix: string;
  /** list keys strictly after this one (the decoded cursor), or from the start */
  after: string | null;
  limit: number;
  now: number;
}

export interface ListPage {
  /** at most `limit` live keys, in UTF-8 byte order */
  keys: ListedKey[];
  /** true when more live keys follow the last one returned */
  truncated: boolean;
}

export interface KVBackend {
  readonly kind: 'memory' | 'sqlite' | 'redis';
  get(namespace: string, key: string, now: number): Promise<StoredEntry | null>;
  /** one result per key, in the order given */
  getMany(namespace: string, keys: string[], now: number): Promise<(StoredEntry | null)[]>;
  /** resolves once the write is durable as far as this backend promises */
  put(namespace: string, key: string, entry: StoredEntry): Promise<void>;
  delete(namespace: string, key: string): Promise<void>;
  list(namespace: string, query: ListQuery): Promise<ListPage>;
  /** delete every entry whose expiration has passed; returns how many went */
  purgeExpired(now: number): Promise<number>;
  close(): Promise<void>;
}

export function isExpired(expiration: number | null, now: number): boolean {
  return expiration !== null && expiration * 1000 <= now;
}
