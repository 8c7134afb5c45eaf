// Redis KV backend (ioredis): what `cinder serve --redis URL` uses, so that every node reads
// and writes the same namespaces. Layout, under a key prefix (default "cinder:kv:"):
//
//   <p>{<ns>}:e:<key>   hash {v: value bytes, m: metadata JSON, x: expiration seconds or ""}
//                       with PEXPIREAT, so Redis itself drops expired values
//   <p>{<ns>}:keys      sorted set of key names, all score 0: ZRANGEBYLEX lists in byte order
//   <p>{<ns>}:exp       sorted set key -> expiration: what the sweeper uses to prune `keys`
//   <p>namespaces       set of namespaces that ever had a key (for the sweeper)
//
// Namespace ids are URI-encoded in key names so that ":" in an id cannot alias another one (and
// "{" or "}" cannot move the hash tag). The {<ns>} hash tag puts one namespace's keys in one
// Redis Cluster slot, so a put or delete is one MULTI/EXEC there too, and namespaces spread over
// the cluster. A reader never sees the value without its index entry; a put resolves when Redis
// has applied it (its own persistence settings decide what survives a Redis crash).
// The layout before 0.x used "<p>ns:<ns>:..." (no hash tag): migrateLegacyKvKeys renames it.
import { createRedisClient, type RedisClient } from '../../src/store/redis-connect.js';
import { isExpired, type KVBackend, type ListedKey, type ListPage, type ListQuery, type StoredEntry } from './backend.js';
import { compareKeys, prefixUpperBound } from './keys.js';

export interface RedisBackendOptions {
  url?: string;
  /** an existing client (not closed by close()) instead of `url` */
  client?: RedisClient;
  keyPrefix?: string;
}

// Removes up to ARGV[3] entries whose expiration (score in KEYS[1]) is <= ARGV[1]. A script, so
// it is atomic: a key re-put with a later expiration between the lookup and the delete cannot be
// removed by mistake.
const PURGE_SCRIPT = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, key in ipairs(expired) do
  redis.call('DEL', ARGV[2] .. key)
  redis.call('ZREM', KEYS[2], key)
  redis.call('ZREM', KEYS[1], key)
end
return #expired
`;
const PURGE_BATCH = 500;

function parseExpiration(raw: Buffer | string | null): number | null {
  if (raw === null || raw.length === 0) return null;
  return Number(raw.toString());
}

export class RedisBackend implements KVBackend {
  readonly kind = 'redis' as const;
  readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly prefix: string;

  constructor(options: RedisBackendOptions) {
    if (!options.client && !options.url) throw new Error('RedisBackend needs a url or a client');
    this.client = options.client ?? createRedisClient(options.url!, { maxRetriesPerRequest: 3 });
    this.ownsClient = !options.client;
    this.prefix = options.keyPrefix ?? 'cinder:kv:';
  }

  private base(namespace: string): string {
    return namespaceBase(this.prefix, encodeURIComponent(namespace));
  }

  private entryKey(namespace: string, key: string): string {
    return `${this.base(namespace)}e:${key}`;
  }

  async get(namespace: string, key: string, now: number): Promise<StoredEntry | null> {
    const [value, metadata, expiration] = await this.client.hmgetBuffer(this.entryKey(namespace, key), 'v', 'm', 'x');
    return this.entry(value, metadata, expiration, now);
  }

  async getMany(namespace: string, keys: string[], now: number): Promise<(StoredEntry | null)[]> {
    const pipeline = this.client.pipeline();
    for (const key of keys) pipeline.hmgetBuffer(this.entryKey(namespace, key), 'v', 'm', 'x');
    const results = (await pipeline.exec()) ?? [];
    return results.map(([error, fields]) => {
      if (error) throw error;
      const [value, metadata, expiration] = fields as (Buffer | null)[];
      return this.entry(value, metadata, expiration, now);
    });
  }

  private entry(value: Buffer | null, metadata: Buffer | null, rawExpiration: Buffer | null, now: number): StoredEntry | null {
    if (value === null) return null;
    const expiration = parseExpiration(rawExpiration);
    if (isExpired(expiration, now)) return null;
    return { value, metadata: metadata === null ? null : metadata.toString('utf8'), expiration };
  }

  async put(namespace: string, key: string, entry: StoredEntry): Promise<void> {
    const base = this.base(namespace);
    const hash = this.entryKey(namespace, key);
    const fields: (string | Buffer)[] = ['v', entry.value, 'x', entry.expiration === null ? '' : String(entry.expiration)];
    if (entry.metadata !== null) fields.push('m', entry.metadata);
    // The registry is another slot: added first, so the sweeper knows every namespace with keys.
    await this.client.sadd(`${this.prefix}namespaces`, encodeURIComponent(namespace));
    const tx = this.client.multi().del(hash).hset(hash, ...fields).zadd(`${base}keys`, 0, key);
    if (entry.expiration === null) tx.zrem(`${base}exp`, key);
    else tx.pexpireat(hash, entry.expiration * 1000).zadd(`${base}exp`, entry.expiration, key);
    await this.exec(tx);
  }

  async delete(namespace: string, key: string): Promise<void> {
    const base = this.base(namespace);
    await this.exec(this.client.multi().del(this.entryKey(namespace, key)).zrem(`${base}keys`, key).zrem(`${base}exp`, key));
  }

  private async exec(tx: ReturnType<RedisClient['multi']>): Promise<void> {
    const results = await tx.exec();
    if (!results) throw new Error('Redis transaction was aborted');
    for (const [error] of results) if (error) throw error;
  }

  async list(namespace: string, query: ListQuery): Promise<ListPage> {
    const base = this.base(namespace);
    const upper = query.prefix ? prefixUpperBound(query.prefix) : null;
    const end = upper === null ? '+' : `(${upper}`;
    let start = query.prefix ? `[${query.prefix}` : '-';
    if (query.after !== null && compareKeys(query.after, query.prefix) >= 0) start = `(${query.after}`;
    const keys: ListedKey[] = [];
    const stale: string[] = [];
    // The index can hold names whose hash Redis already expired (until the sweeper prunes
    // them), so read in batches until limit + 1 live keys are found or the range ends.
    while (keys.length <= query.limit) {
      const want = query.limit + 1 - keys.length;
      const names = await this.client.zrangebylex(`${base}keys`, start, end, 'LIMIT', 0, want);
      if (names.length === 0) break;
      const pipeline = this.client.pipeline();
      for (const name of names) pipeline.hmget(`${base}e:${name}`, 'm', 'x');
      const results = (await pipeline.exec()) ?? [];
      names.forEach((name, i) => {
        const [error, fields] = results[i];
        if (error) throw error;
        const [metadata, rawExpiration] = fields as (string | null)[];
        // x is always written ("" for no expiration): null means the hash is gone.
        if (rawExpiration === null) return void stale.push(name);
        const expiration = parseExpiration(rawExpiration);
        if (isExpired(expiration, query.now)) return;
        keys.push({ name, expiration, metadata });
      });
      if (names.length < want) break;
      start = `(${names[names.length - 1]}`;
    }
    if (stale.length) this.client.zrem(`${base}keys`, ...stale).catch(() => {});
    const truncated = keys.length > query.limit;
    return { keys: truncated ? keys.slice(0, query.limit) : keys, truncated };
  }

  async purgeExpired(now: number): Promise<number> {
    const namespaces = await this.client.smembers(`${this.prefix}namespaces`);
    let purged = 0;
    for (const encoded of namespaces) {
      const base = namespaceBase(this.prefix, encoded);
      for (;;) {
        const n = Number(await this.client.eval(PURGE_SCRIPT, 2, `${base}exp`, `${base}keys`, String(now / 1000), `${base}e:`, String(PURGE_BATCH)));
        purged += n;
        if (n < PURGE_BATCH) break;
      }
    }
    return purged;
  }

  async close(): Promise<void> {
    if (this.ownsClient && this.client.status !== 'end') await this.client.quit().catch(() => this.client.disconnect());
  }
}

/** Where one namespace's keys live (see the header); `encoded` is the URI-encoded namespace id. */
export function namespaceBase(prefix: string, encoded: string): string {
  return `${prefix}{${encoded}}:`;
}

/**
 * Rename keys of the layout before hash tags ("<p>ns:<ns>:...") to the current one, on a single
 * Redis server (where any key can be renamed to any other). Only namespaces whose old index is
 * still there are scanned (every serving process runs this at start: it must cost nothing once
 * done). Idempotent, and safe with several nodes starting at once: a key another node renamed
 * first is skipped. Returns how many moved.
 */
export async function migrateLegacyKvKeys(client: RedisClient, prefix = 'cinder:kv:'): Promise<number> {
  let moved = 0;
  for (const encoded of await client.smembers(`${prefix}namespaces`)) {
    const old = `${prefix}ns:${encoded}:`;
    if ((await client.exists(`${old}keys`, `${old}exp`)) === 0) continue;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${globEscape(old)}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const rest = key.slice(old.length);
        if (!(rest === 'keys' || rest === 'exp' || rest.startsWith('e:'))) continue;
        if ((await client.renamenx(key, `${namespaceBase(prefix, encoded)}${rest}`).catch(() => 0)) === 1) moved++;
      }
    } while (cursor !== '0');
  }
  return moved;
}

/** A literal for SCAN MATCH (URI-encoding leaves "*" and friends as they are). */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
