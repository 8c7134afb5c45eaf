// Redis KV backend (ioredis): what `cinder serve --redis URL` uses, so that every node reads
// and writes the same namespaces. Layout, under a key prefix (default "cinder:kv:"):
//
//   <p>ns:<ns>:e:<key>   hash {v: value bytes, m: metadata JSON, x: expiration seconds or ""}
//                        with PEXPIREAT, so Redis itself drops expired values
//   <p>ns:<ns>:keys      sorted set of key names, all score 0: ZRANGEBYLEX lists in byte order
//   <p>ns:<ns>:exp       sorted set key -> expiration: what the sweeper uses to prune `keys`
//   <p>namespaces        set of namespaces that ever had a key (for the sweeper)
//
// Namespace ids are URI-encoded in key names so that ":" in an id cannot alias another one.
// A put or delete is one MULTI/EXEC, so a reader never sees the value without its index entry;
// a put resolves when Redis has applied it (its own persistence settings decide what survives
// a Redis crash).
import { Redis } from 'ioredis';
import { isExpired, type KVBackend, type ListedKey, type ListPage, type ListQuery, type StoredEntry } from './backend.js';
import { compareKeys, prefixUpperBound } from './keys.js';

export interface RedisBackendOptions {
  url?: string;
  /** an existing client (not closed by close()) instead of `url` */
  client?: Redis;
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
  readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly prefix: string;

  constructor(options: RedisBackendOptions) {
    if (!options.client && !options.url) throw new Error('RedisBackend needs a url or a client');
    this.client = options.client ?? new Redis(options.url!, { maxRetriesPerRequest: 3 });
    this.ownsClient = !options.client;
    this.prefix = options.keyPrefix ?? 'cinder:kv:';
  }

  private base(namespace: string): string {
    return `${this.prefix}ns:${encodeURIComponent(namespace)}:`;
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
    const tx = this.client.multi().del(hash).hset(hash, ...fields).zadd(`${base}keys`, 0, key).sadd(`${this.prefix}namespaces`, encodeURIComponent(namespace));
    if (entry.expiration === null) tx.zrem(`${base}exp`, key);
    else tx.pexpireat(hash, entry.expiration * 1000).zadd(`${base}exp`, entry.expiration, key);
    await this.exec(tx);
  }

  async delete(namespace: string, key: string): Promise<void> {
    const base = this.base(namespace);
    await this.exec(this.client.multi().del(this.entryKey(namespace, key)).zrem(`${base}keys`, key).zrem(`${base}exp`, key));
  }

  private async exec(tx: ReturnType<Redis['multi']>): Promise<void> {
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
      const base = `${this.prefix}ns:${encoded}:`;
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
