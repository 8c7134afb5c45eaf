// In-memory KV backend: for tests and `cinder dev --kv`. Each namespace keeps a Map for lookups
// and a sorted key array for listing (binary search to the start of a page), so a list costs
// O(log n + page) rather than a sort per call.
import { isExpired, type KVBackend, type ListPage, type ListQuery, type StoredEntry } from './backend.js';
import { compareKeys, prefixUpperBound } from './keys.js';

interface Namespace {
  entries: Map<string, StoredEntry>;
  sorted: string[];
}

/** Index of the first key in `sorted` that is >= key (or > key when `strict`). */
function lowerBound(sorted: string[], key: string, strict: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareKeys(sorted[mid], key);
    if (c < 0 || (strict && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class MemoryBackend implements KVBackend {
  readonly kind = 'memory' as const;
  private readonly namespaces = new Map<string, Namespace>();

  private ns(name: string, create: true): Namespace;
  private ns(name: string, create: false): Namespace | undefined;
  private ns(name: string, create: boolean): Namespace | undefined {
    let ns = this.namespaces.get(name);
    if (!ns && create) {
      ns = { entries: new Map(), sorted: [] };
      this.namespaces.set(name, ns);
    }
    return ns;
  }

  async get(namespace: string, key: string, now: number): Promise<StoredEntry | null> {
    return this.read(namespace, key, now);
  }

  async getMany(namespace: string, keys: string[], now: number): Promise<(StoredEntry | null)[]> {
    return keys.map((key) => this.read(namespace, key, now));
  }

  private read(namespace: string, key: string, now: number): StoredEntry | null {
    const ns = this.ns(namespace, false);
    const entry = ns?.entries.get(key);
    if (!ns || !entry) return null;
    if (isExpired(entry.expiration, now)) {
      this.remove(ns, key);
      return null;
    }
    return entry;
  }

  async put(namespace: string, key: string, entry: StoredEntry): Promise<void> {
    const ns = this.ns(namespace, true);
    // Own copy of the bytes: the caller's buffer may be reused or mutated after we return.
    const stored = { ...entry, value: Buffer.from(entry.value) };
    if (!ns.entries.has(key)) ns.sorted.splice(lowerBound(ns.sorted, key, false), 0, key);
    ns.entries.set(key, stored);
  }

  async delete(namespace: string, key: string): Promise<void> {
    const ns = this.ns(namespace, false);
    if (ns) this.remove(ns, key);
  }

  private remove(ns: Namespace, key: string): void {
    if (!ns.entries.delete(key)) return;
    const at = lowerBound(ns.sorted, key, false);
    if (ns.sorted[at] === key) ns.sorted.splice(at, 1);
  }

  async list(namespace: string, query: ListQuery): Promise<ListPage> {
    const ns = this.ns(namespace, false);
    if (!ns) return { keys: [], truncated: false };
    const upper = query.prefix ? prefixUpperBound(query.prefix) : null;
    let start = lowerBound(ns.sorted, query.prefix, false);
    if (query.after !== null && compareKeys(query.after, query.prefix) >= 0) start = lowerBound(ns.sorted, query.after, true);
    const keys: ListPage['keys'] = [];
    for (let i = start; i < ns.sorted.length; i++) {
      const name = ns.sorted[i];
      if (upper !== null && compareKeys(name, upper) >= 0) break;
      const entry = ns.entries.get(name)!;
      if (isExpired(entry.expiration, query.now)) continue;
      if (keys.length === query.limit) return { keys, truncated: true };
      keys.push({ name, expiration: entry.expiration, metadata: entry.metadata });
    }
    return { keys, truncated: false };
  }

  async purgeExpired(now: number): Promise<number> {
    let purged = 0;
    for (const ns of this.namespaces.values()) {
      let removed = 0;
      for (const [key, entry] of ns.entries) {
        if (isExpired(entry.expiration, now)) {
          ns.entries.delete(key);
          removed++;
        }
      }
      // One pass over the sorted index instead of a splice per key.
      if (removed) ns.sorted = ns.sorted.filter((key) => ns.entries.has(key));
      purged += removed;
    }
    return purged;
  }

  async close(): Promise<void> {
    this.namespaces.clear();
  }
}
