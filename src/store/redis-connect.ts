// How Cinder reaches Redis, one node or a Redis Cluster, from the one `--redis` URL an operator
// gives. Every Redis connection Cinder makes (deployment store, bus, KV, queues, usage, cron
// leases) is created here, so they all agree on which it is.
//
//   redis://[user:pass@]host:port[/db]            one Redis server (rediss:// for TLS)
//   redis+cluster://[user:pass@]h1:p1,h2:p2,...   a Redis Cluster, by one or more seed nodes
//                                                 (rediss+cluster:// for TLS); the others are
//                                                 found from the cluster's own slot map
// `cinder serve` also upgrades a plain redis:// URL that points at a cluster node by itself
// (resolveRedisUrl asks the node `INFO cluster`), so one node's address is enough.
//
// The keys: every multi-key operation (MULTI/EXEC, scripts, pipelines) touches keys of one hash
// tag; see docs/operations.md "What Redis holds" and test/scale/redis-key-slots.test.ts.
import { Cluster, Redis, type RedisOptions } from 'ioredis';

/** A connection to either: both answer the same commands (ioredis). */
export type RedisClient = Redis | Cluster;

export interface RedisTarget {
  cluster: boolean;
  tls: boolean;
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  db: number;
}

export class RedisUrlError extends Error {}

/** Parse a `--redis` URL (see the header); bad ones are refused naming what is wrong. */
export function parseRedisUrl(url: string): RedisTarget {
  // (ioredis options such as ?family=6 are not read from the URL here: refused rather than ignored)
  if (/^rediss?(\+cluster)?:\/\/[^?#]*[?#]/.test(url.trim())) {
    throw new RedisUrlError(`--redis: "${redisLabel(url)}": query parameters and fragments are not supported; write the URL without them (redis://host:port/db)`);
  }
  const match = /^(rediss?)(\+cluster)?:\/\/(?:([^@/]*)@)?([^/?#]+)(\/[^?#]*)?$/.exec(url.trim());
  if (!match) throw new RedisUrlError(`--redis: "${redisLabel(url)}" is not a Redis URL (expected redis://host:port, rediss://host:port or redis+cluster://host:port,host:port)`);
  const [, scheme, clusterSuffix, auth, hostList, path] = match;
  const cluster = clusterSuffix !== undefined;
  let username: string | undefined;
  let password: string | undefined;
  if (auth !== undefined) {
    const colon = auth.indexOf(':');
    if (colon < 0) password = decodeURIComponent(auth) || undefined;
    else {
      username = decodeURIComponent(auth.slice(0, colon)) || undefined;
      password = decodeURIComponent(auth.slice(colon + 1)) || undefined;
    }
  }
  const hosts = hostList.split(',');
  if (!cluster && hosts.length > 1) throw new RedisUrlError(`--redis: several hosts (${hosts.join(', ')}) name a Redis Cluster: write redis+cluster://${hosts.join(',')}`);
  const nodes = hosts.map((entry) => {
    const hostPort = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d+))?$/.exec(entry);
    if (!hostPort) throw new RedisUrlError(`--redis: "${entry}" is not host:port`);
    const port = hostPort[2] === undefined ? 6379 : Number(hostPort[2]);
    if (!(port > 0 && port < 65536)) throw new RedisUrlError(`--redis: port ${hostPort[2]} is out of range`);
    return { host: hostPort[1].replace(/^\[|\]$/g, ''), port };
  });
  const dbText = (path ?? '').replace(/^\//, '');
  if (dbText !== '' && !/^\d+$/.test(dbText)) throw new RedisUrlError(`--redis: the database "${dbText}" is not a number`);
  const db = dbText === '' ? 0 : Number(dbText);
  if (cluster && db !== 0) throw new RedisUrlError('--redis: a Redis Cluster has only database 0');
  return { cluster, tls: scheme === 'rediss', nodes, username, password, db };
}

/** The parts of a URL safe to show in an error or a log (never a password). */
export function redisLabel(url: string): string {
  const match = /^([a-z+]+):\/\/(?:[^@/]*@)?([^/?#]*)(\/[^?#]*)?/.exec(url.trim());
  if (!match) return 'redis';
  const hosts = match[2]
    .split(',')
    .map((h) => (/:\d+$/.test(h) ? h : `${h}:6379`))
    .join(',');
  return `${match[1]}://${hosts}${match[3] && match[3] !== '/' ? match[3] : ''}`;
}

/** What each caller decides about its connection (the rest follows from the URL). */
export interface RedisClientOptions {
  enableOfflineQueue?: boolean;
  maxRetriesPerRequest?: number | null;
  connectTimeout?: number;
  retryStrategy?: (times: number) => number | null;
  lazyConnect?: boolean;
}

export function createRedisClient(url: string, options: RedisClientOptions = {}): RedisClient {
  const target = parseRedisUrl(url);
  const { retryStrategy, enableOfflineQueue, lazyConnect, ...perConnection } = options;
  const nodeOptions: RedisOptions = {
    ...perConnection,
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
  };
  if (!target.cluster) {
    return new Redis({ ...nodeOptions, host: target.nodes[0].host, port: target.nodes[0].port, db: target.db, retryStrategy, enableOfflineQueue, lazyConnect });
  }
  return new Cluster(target.nodes, {
    redisOptions: nodeOptions,
    // The cluster as a whole reconnects (its nodes' own connections follow the slot map).
    clusterRetryStrategy: retryStrategy ?? ((times: number) => Math.min(100 * times, 2000)),
    enableOfflineQueue,
    lazyConnect,
    // A node that moved a slot answers MOVED; follow it rather than fail the call.
    maxRedirections: 16,
  });
}

/**
 * `cinder serve --redis redis://one-node:port`: when that node is part of a Redis Cluster, the
 * URL becomes redis+cluster:// with it as the seed, so an operator need not know the difference.
 * Unreachable: the URL is returned as it is (the store's start-up then fails naming Redis).
 */
export async function resolveRedisUrl(url: string): Promise<string> {
  const target = parseRedisUrl(url);
  if (target.cluster) return url;
  const probe = createRedisClient(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 5000, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    if (!clusterEnabled(String(await probe.info('cluster')))) return url;
  } catch {
    return url;
  } finally {
    probe.disconnect();
  }
  return url.replace(/^(rediss?):\/\//, '$1+cluster://').replace(/(\+cluster:\/\/(?:[^@/]*@)?[^/?#]+)\/0?$/, '$1');
}

/** Whether an `INFO cluster` answer says the server runs in cluster mode. */
export function clusterEnabled(info: string): boolean {
  return /^cluster_enabled:1\s*$/m.test(info);
}
