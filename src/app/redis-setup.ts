// What `cinder serve --redis` and `cinder kv --redis` do with the URL before anything connects:
// a plain redis:// URL that reaches a Redis Cluster node becomes redis+cluster:// (every client is
// then a cluster client), and on a single server, keys left in the layout before hash tags (KV
// namespaces, queues) are renamed to the current one, so an upgrade keeps its data.
// A cluster never holds the old layout: its multi-key writes failed there (CROSSSLOT).
import type { Logger } from 'pino';
import { migrateLegacyKvKeys } from '../../bindings/kv/redis.js';
import { migrateLegacyQueueKeys } from '../../bindings/queues/redis.js';
import { createRedisClient, parseRedisUrl, redisLabel, resolveRedisUrl } from '../store/redis-connect.js';

export async function prepareRedis(url: string, logger?: Logger): Promise<string> {
  parseRedisUrl(url); // a malformed URL is refused here, naming what is wrong
  const resolved = await resolveRedisUrl(url);
  if (resolved !== url) logger?.info({ redis: redisLabel(resolved) }, 'Redis is a cluster: connecting as a cluster client');
  if (parseRedisUrl(resolved).cluster) return resolved;
  const client = createRedisClient(resolved, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5000, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch {
    client.disconnect();
    return resolved; // unreachable: the store's start-up says so, naming Redis
  }
  try {
    const kv = await migrateLegacyKvKeys(client);
    const queues = await migrateLegacyQueueKeys(client);
    if (kv || queues) logger?.info({ kv, queues }, `renamed ${kv + queues} Redis keys to the cluster-ready layout (hash tags)`);
  } finally {
    client.disconnect();
  }
  return resolved;
}
