// The deployment store in Redis (`cinder serve --redis URL`): every node reads and writes the same
// workers, versions (code, bindings with their secrets, crons, limits), routes, accounts and
// tokens, so a node started with an empty data directory serves everything at once.
//
// Key layout (Redis Cluster ready: keys that one transaction touches share a hash tag):
//   cinder:{d}:gen                 bumped by every write: the WATCH that makes writes atomic
//   cinder:{d}:workers             hash  name -> WorkerInfo JSON
//   cinder:{d}:versions:<worker>   hash  version id -> VersionInfo JSON
//   cinder:{d}:routes              hash  pattern -> worker
//   cinder:{d}:accounts            hash  id -> AccountInfo JSON
//   cinder:{d}:tokens              hash  id -> TokenInfo JSON;  cinder:{d}:token-hashes  hash -> id
//   cinder:{v:<id>}:modules        string, the version's modules (JSON): the bulk, spread by version
//   cinder:{v:<id>}:cache:<v8>     hash  m:<module> -> V8 code cache, r:<module> -> "1" when made
//                                  after a first request
//   cinder:{v:<id>}:snapshot       hash  platform, data, sha256, handlers, refused
// The control metadata sits in one slot on purpose: a publish must check route claims against
// every other account's routes and worker names atomically, and it is small; the code and the
// caches, which are large, spread over the cluster by version.
//
// Writes are optimistic transactions: WATCH gen, read, decide in TypeScript (the same route-claim
// rule as SQLite, route-claims.ts), MULTI ... INCR gen EXEC; a concurrent write from any node
// aborts the EXEC and the write is retried. A write resolves only when Redis has applied it.
//
// With Redis unreachable every call fails at once with StoreUnavailableError (no offline queue:
// a deploy must be refused now, not hang until Redis is back).
//
// On a Redis Cluster (redis+cluster://, redis-connect.ts) the same: WATCH and MULTI/EXEC go to the
// node serving the {d} slot, over the writer's connection to that node.
import { Cluster } from 'ioredis';
import { clusterEnabled, createRedisClient, redisLabel, type RedisClient } from './redis-connect.js';
import { moduleSize, type WorkerModuleSource } from '../model/worker-definition.js';
import {
  AccountExistsError,
  DEFAULT_ACCOUNT,
  RouteConflictError,
  StoreUnavailableError,
  WorkerOwnedError,
  type AccountInfo,
  type DeploymentStore,
  type NewVersion,
  type RouteRecord,
  type StoredCodeCache,
  type StoredDeploymentSnapshot,
  type TokenInfo,
  type VersionInfo,
  type WorkerInfo,
} from './types.js';
import { findRouteClaimConflict } from './route-claims.js';

export interface RedisStoreOptions {
  url: string;
  /** key prefix (default "cinder"); several platforms can share one Redis with different ones */
  prefix?: string;
  /** how long a connection attempt may take before start-up fails (default 5 s) */
  connectTimeoutMs?: number;
}

const MAX_TX_RETRIES = 50;

export { redisLabel };
type Multi = ReturnType<RedisClient['multi']>;

export class RedisDeploymentStore implements DeploymentStore {
  readonly client: RedisClient;
  /** WATCH is per connection: transactions get a connection of their own, one at a time */
  private readonly writer: RedisClient;
  private writeTail: Promise<unknown> = Promise.resolve();
  private readonly p: string;
  private readonly v8 = process.versions.v8;
  readonly label: string;

  private constructor(options: RedisStoreOptions) {
    this.p = options.prefix ?? 'cinder';
    this.label = redisLabel(options.url);
    const clientOptions = {
      // Refuse at once while disconnected (see the header), and keep trying to reconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
      lazyConnect: true,
    };
    this.client = createRedisClient(options.url, clientOptions);
    this.writer = createRedisClient(options.url, clientOptions);
    // Errors surface on the calls that fail; the connection's own errors would only repeat them.
    for (const client of [this.client, this.writer]) client.on('error', () => {});
  }

  /** Connect (start-up fails naming Redis when it cannot be reached). */
  static async open(options: RedisStoreOptions): Promise<RedisDeploymentStore> {
    const store = new RedisDeploymentStore(options);
    try {
      await Promise.all([store.client.connect(), store.writer.connect()]);
      await store.refuseClusterNodeAsSingle();
      await store.ensureDefaultAccount();
    } catch (error) {
      store.client.disconnect();
      store.writer.disconnect();
      if (error instanceof RedisSetupError) throw error;
      throw new StoreUnavailableError(`cannot reach Redis at ${store.label}: ${(error as Error).message}`);
    }
    return store;
  }

  /** Whether this is a Redis Cluster connection. */
  get cluster(): boolean {
    return this.client instanceof Cluster;
  }

  /**
   * A cluster node reached as one server answers MOVED for most keys: say what to write instead
   * (`cinder serve` upgrades such a URL by itself; this is for anything that did not).
   */
  private async refuseClusterNodeAsSingle(): Promise<void> {
    if (this.cluster) return;
    if (clusterEnabled(String(await this.client.info('cluster')))) {
      throw new RedisSetupError(`${this.label} is a Redis Cluster node: connect with --redis ${this.label.replace(/^(rediss?):/, '$1+cluster:')}`);
    }
  }

  /** Whether the store's connection is up now (readiness). */
  get connected(): boolean {
    return this.client.status === 'ready' && this.writer.status === 'ready';
  }

  private k(name: string): string {
    return `${this.p}:{d}:${name}`;
  }
  private versionsKey(worker: string): string {
    return this.k(`versions:${worker}`);
  }
  private v(id: string, name: string): string {
    return `${this.p}:{v:${id}}:${name}`;
  }

  /** Every Redis call goes through here: a connection failure becomes StoreUnavailableError. */
  private async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (isDomainError(error)) throw error;
      const message = (error as Error).message ?? String(error);
      if (/Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|max retries|enableOfflineQueue|connect/i.test(message) || !this.connected) {
        throw new StoreUnavailableError(`Redis at ${this.label} is unreachable (${message}); deploys and other changes are refused until it is back, and every node keeps serving what it has`);
      }
      throw error;
    }
  }

  /** An optimistic transaction on the control metadata (see the header). */
  private transact<T>(decide: (redis: RedisClient) => Promise<{ apply: (tx: Multi) => void; result: T }>): Promise<T> {
    const run = async (): Promise<T> => {
      for (let attempt = 0; attempt < MAX_TX_RETRIES; attempt++) {
        await this.writer.watch(this.k('gen'));
        let decided: { apply: (tx: Multi) => void; result: T };
        try {
          decided = await decide(this.writer);
        } catch (error) {
          await this.unwatch();
          throw error;
        }
        const tx = this.writer.multi();
        decided.apply(tx);
        tx.incr(this.k('gen'));
        const results = await tx.exec();
        if (results === null) continue; // another write came first: decide again
        for (const [error] of results) if (error) throw error;
        return decided.result;
      }
      throw new Error('the deployment store is too busy: a write kept being overtaken by others');
    };
    const next = this.writeTail.then(() => this.call(run), () => this.call(run));
    this.writeTail = next.catch(() => {});
    return next;
  }

  /** UNWATCH has no key: a cluster would send it to any node. An EXEC on the {d} node ends the
   *  WATCH there as well (whatever it answers). */
  private async unwatch(): Promise<void> {
    if (this.writer instanceof Cluster) await this.writer.multi().exists(this.k('gen')).exec().catch(() => {});
    else await this.writer.unwatch().catch(() => {});
  }

  private async ensureDefaultAccount(): Promise<void> {
    const account: AccountInfo = { id: DEFAULT_ACCOUNT, name: DEFAULT_ACCOUNT, createdAt: Date.now() };
    await this.client.hsetnx(this.k('accounts'), DEFAULT_ACCOUNT, JSON.stringify(account));
  }

  // --- reads ---------------------------------------------------------------------------------------

  listWorkers(): Promise<WorkerInfo[]> {
    return this.call(async () => {
      const all = await this.client.hvals(this.k('workers'));
      return all.map((json) => JSON.parse(json) as WorkerInfo).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }

  getWorker(name: string): Promise<WorkerInfo | null> {
    return this.call(async () => parse<WorkerInfo>(await this.client.hget(this.k('workers'), name)));
  }

  listVersions(worker: string): Promise<VersionInfo[]> {
    return this.call(async () => (await this.client.hvals(this.versionsKey(worker))).map((json) => JSON.parse(json) as VersionInfo).sort((a, b) => b.number - a.number));
  }

  getVersion(worker: string, id: string): Promise<VersionInfo | null> {
    return this.call(async () => parse<VersionInfo>(await this.client.hget(this.versionsKey(worker), id)));
  }

  getModules(versionId: string): Promise<WorkerModuleSource[]> {
    return this.call(async () => parse<WorkerModuleSource[]>(await this.client.get(this.v(versionId, 'modules'))) ?? []);
  }

  listRoutes(): Promise<RouteRecord[]> {
    return this.call(async () => {
      const [routes, workers] = await Promise.all([this.client.hgetall(this.k('routes')), this.client.hgetall(this.k('workers'))]);
      return Object.entries(routes)
        .map(([pattern, worker]) => ({ pattern, worker, account: parse<WorkerInfo>(workers[worker])?.account ?? DEFAULT_ACCOUNT }))
        .sort((a, b) => (a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0));
    });
  }

  // --- writes --------------------------------------------------------------------------------------

  async publish(version: NewVersion, routes?: string[], account: string = DEFAULT_ACCOUNT): Promise<VersionInfo> {
    const summary = version.modules.map((m) => ({ name: m.name, type: m.type, size: moduleSize(m) }));
    // The code first, under its own key: the version that names it is written (or not) afterwards,
    // atomically. A publish that then fails leaves no version pointing at it, and drops it.
    const modulesKey = this.v(version.id, 'modules');
    await this.call(() => this.client.set(modulesKey, JSON.stringify(version.modules)));
    try {
      return await this.transact(async (redis) => {
        const owner = parse<WorkerInfo>(await redis.hget(this.k('workers'), version.worker));
        if (owner && owner.account !== account) throw new WorkerOwnedError(version.worker);
        const existing = (await redis.hvals(this.versionsKey(version.worker))).map((json) => JSON.parse(json) as VersionInfo);
        const number = existing.reduce((max, v) => Math.max(max, v.number), 0) + 1;
        const { modules: _code, ...rest } = version;
        const info: VersionInfo = { ...rest, number, modules: summary };
        const worker: WorkerInfo = {
          name: version.worker,
          account: owner?.account ?? account,
          currentVersion: version.id,
          createdAt: owner?.createdAt ?? version.createdAt,
          updatedAt: version.createdAt,
        };
        const routeChange = routes ? await this.planRoutes(redis, version.worker, worker.account, routes) : null;
        return {
          result: info,
          apply: (tx) => {
            tx.hset(this.versionsKey(version.worker), version.id, JSON.stringify(info));
            tx.hset(this.k('workers'), version.worker, JSON.stringify(worker));
            routeChange?.(tx);
          },
        };
      });
    } catch (error) {
      await this.client.del(modulesKey).catch(() => {});
      throw error;
    }
  }

  async activate(worker: string, versionId: string): Promise<void> {
    await this.transact(async (redis) => {
      const info = parse<WorkerInfo>(await redis.hget(this.k('workers'), worker));
      const exists = await redis.hexists(this.versionsKey(worker), versionId);
      if (!info || !exists) throw new NotFoundInStore(`worker "${worker}" has no version "${versionId}"`);
      const updated: WorkerInfo = { ...info, currentVersion: versionId, updatedAt: Date.now() };
      return { result: undefined, apply: (tx) => void tx.hset(this.k('workers'), worker, JSON.stringify(updated)) };
    });
  }

  async setRoutes(worker: string, patterns: string[]): Promise<void> {
    await this.transact(async (redis) => {
      const info = parse<WorkerInfo>(await redis.hget(this.k('workers'), worker));
      if (!info) throw new NotFoundInStore(`no worker named "${worker}"`);
      const change = await this.planRoutes(redis, worker, info.account, patterns);
      const updated: WorkerInfo = { ...info, updatedAt: Date.now() };
      return {
        result: undefined,
        apply: (tx) => {
          change(tx);
          tx.hset(this.k('workers'), worker, JSON.stringify(updated));
        },
      };
    });
  }

  /** Under WATCH: check the claims (same rule as SQLite) and return the writes that make them. */
  private async planRoutes(redis: RedisClient, worker: string, account: string, patterns: string[]): Promise<(tx: Multi) => void> {
    const [routes, workersRaw] = await Promise.all([redis.hgetall(this.k('routes')), redis.hgetall(this.k('workers'))]);
    const accountOf = (name: string) => parse<WorkerInfo>(workersRaw[name])?.account ?? DEFAULT_ACCOUNT;
    for (const pattern of patterns) {
      const owner = routes[pattern];
      if (owner !== undefined && owner !== worker) throw new RouteConflictError(pattern, accountOf(owner) === account ? owner : null, `the route "${pattern}"`);
    }
    if (patterns.length) {
      const others = Object.entries(routes).filter(([, w]) => accountOf(w) !== account).map(([pattern]) => pattern);
      const conflict = findRouteClaimConflict(patterns, others, (name) => workersRaw[name] !== undefined && accountOf(name) !== account);
      if (conflict) throw new RouteConflictError(conflict.pattern, null, conflict.claim);
    }
    const mine = Object.entries(routes).filter(([, w]) => w === worker).map(([pattern]) => pattern);
    return (tx) => {
      if (mine.length) tx.hdel(this.k('routes'), ...mine);
      for (const pattern of new Set(patterns)) tx.hset(this.k('routes'), pattern, worker);
    };
  }

  async deleteWorker(name: string): Promise<boolean> {
    const ids = await this.transact(async (redis) => {
      const existed = (await redis.hexists(this.k('workers'), name)) === 1;
      const versionIds = await redis.hkeys(this.versionsKey(name));
      const routes = Object.entries(await redis.hgetall(this.k('routes'))).filter(([, w]) => w === name).map(([pattern]) => pattern);
      return {
        result: { existed, versionIds },
        apply: (tx) => {
          tx.hdel(this.k('workers'), name);
          tx.del(this.versionsKey(name));
          if (routes.length) tx.hdel(this.k('routes'), ...routes);
        },
      };
    });
    // The bulk lives in other slots: dropped after the metadata that names it is gone.
    await this.call(async () => {
      const keys = ids.versionIds.flatMap((id) => [this.v(id, 'modules'), this.v(id, 'snapshot'), this.v(id, `cache:${this.v8}`)]);
      for (const key of keys) await this.client.del(key);
    }).catch(() => {});
    return ids.existed;
  }

  // --- accounts and tokens -------------------------------------------------------------------------

  async createAccount(account: AccountInfo): Promise<void> {
    await this.transact(async (redis) => {
      const all = (await redis.hvals(this.k('accounts'))).map((json) => JSON.parse(json) as AccountInfo);
      if (all.some((a) => a.name === account.name || a.id === account.name)) throw new AccountExistsError(account.name);
      return { result: undefined, apply: (tx) => void tx.hset(this.k('accounts'), account.id, JSON.stringify(account)) };
    });
  }

  getAccount(idOrName: string): Promise<AccountInfo | null> {
    return this.call(async () => {
      const byId = parse<AccountInfo>(await this.client.hget(this.k('accounts'), idOrName));
      if (byId) return byId;
      return (await this.listAccounts()).find((a) => a.name === idOrName) ?? null;
    });
  }

  listAccounts(): Promise<AccountInfo[]> {
    return this.call(async () => (await this.client.hvals(this.k('accounts'))).map((json) => JSON.parse(json) as AccountInfo).sort((a, b) => (a.name < b.name ? -1 : 1)));
  }

  async createToken(token: TokenInfo): Promise<void> {
    await this.transact(async () => ({
      result: undefined,
      apply: (tx) => {
        tx.hset(this.k('tokens'), token.id, JSON.stringify(token));
        tx.hset(this.k('token-hashes'), token.hash, token.id);
      },
    }));
  }

  findToken(hash: string): Promise<TokenInfo | null> {
    return this.call(async () => {
      const id = await this.client.hget(this.k('token-hashes'), hash);
      return id ? parse<TokenInfo>(await this.client.hget(this.k('tokens'), id)) : null;
    });
  }

  listTokens(account?: string): Promise<TokenInfo[]> {
    return this.call(async () =>
      (await this.client.hvals(this.k('tokens')))
        .map((json) => JSON.parse(json) as TokenInfo)
        .filter((t) => account === undefined || t.account === account)
        .sort((a, b) => a.createdAt - b.createdAt),
    );
  }

  async deleteToken(id: string): Promise<boolean> {
    return this.transact(async (redis) => {
      const token = parse<TokenInfo>(await redis.hget(this.k('tokens'), id));
      return {
        result: token !== null,
        apply: (tx) => {
          tx.hdel(this.k('tokens'), id);
          if (token) tx.hdel(this.k('token-hashes'), token.hash);
        },
      };
    });
  }

  // --- optimisations (code cache, deployment snapshots) --------------------------------------------

  getCodeCache(versionId: string): Promise<StoredCodeCache> {
    return this.call(async () => {
      const raw = await this.client.hgetallBuffer(this.v(versionId, `cache:${this.v8}`));
      const modules = new Map<string, Buffer>();
      for (const [field, value] of Object.entries(raw)) if (field.startsWith('m:')) modules.set(field.slice(2), value);
      const afterRun = modules.size > 0 && [...modules.keys()].every((module) => raw[`r:${module}`]?.toString() === '1');
      return { modules, afterRun };
    });
  }

  async putCodeCache(versionId: string, cache: StoredCodeCache): Promise<void> {
    if (!(await this.versionExists(versionId))) return;
    const key = this.v(versionId, `cache:${this.v8}`);
    const fields: (string | Buffer)[] = [];
    for (const [module, data] of cache.modules) fields.push(`m:${module}`, data, `r:${module}`, cache.afterRun ? '1' : '0');
    if (!fields.length) return;
    await this.call(() => this.client.hset(key, ...fields));
  }

  getDeploymentSnapshot(versionId: string): Promise<StoredDeploymentSnapshot | null> {
    return this.call(async () => {
      const raw = await this.client.hgetallBuffer(this.v(versionId, 'snapshot'));
      if (!raw.platform) return null;
      const platform = raw.platform.toString();
      if (raw.refused || !raw.data) return { platform, refused: raw.refused?.toString() ?? 'no data' };
      return { platform, data: raw.data, sha256: raw.sha256?.toString() ?? '', handlers: raw.handlers?.toString() ?? '' };
    });
  }

  async putDeploymentSnapshot(versionId: string, snapshot: StoredDeploymentSnapshot): Promise<void> {
    if (!(await this.versionExists(versionId))) return;
    const key = this.v(versionId, 'snapshot');
    const fields: (string | Buffer)[] = 'refused' in snapshot ? ['platform', snapshot.platform, 'refused', snapshot.refused] : ['platform', snapshot.platform, 'data', snapshot.data, 'sha256', snapshot.sha256, 'handlers', snapshot.handlers];
    await this.call(() => this.client.multi().del(key).hset(key, ...fields).exec());
  }

  /** Whether a version is still stored (its modules key is its existence: deleted with it). */
  private versionExists(versionId: string): Promise<boolean> {
    return this.call(async () => (await this.client.exists(this.v(versionId, 'modules'))) === 1);
  }

  async close(): Promise<void> {
    await this.writeTail.catch(() => {});
    this.client.disconnect();
    this.writer.disconnect();
  }
}

/** Redis is reachable but not usable as given (start-up fails with this message). */
export class RedisSetupError extends Error {}

/** An error decided by the store's rules (not a connection failure). */
class NotFoundInStore extends Error {}

function isDomainError(error: unknown): boolean {
  return error instanceof RouteConflictError || error instanceof WorkerOwnedError || error instanceof AccountExistsError || error instanceof NotFoundInStore || error instanceof StoreUnavailableError;
}

function parse<T>(json: string | null | undefined): T | null {
  return json === null || json === undefined ? null : (JSON.parse(json) as T);
}
