// `cinder serve`: the multi-tenant server. The data plane (workers, by route or by host) listens on
// one port and the admin API (upload, versions, routes; bearer auth) on another, so the admin port
// can stay on a private interface. At start every worker, its live version and every route come
// back from the deployment store under --data.
import type { PrivateAllowance } from '../../bindings/fetch/address-policy.js';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Runtime, type RuntimeOptions } from '../runtime/runtime.js';
import type { Limits } from '../model/limits.js';
import { createIngress } from '../data-plane/ingress.js';
import { Router } from '../data-plane/router.js';
import { DEFAULT_DATA_DIR, openDeploymentStore, RedisDeploymentStore, type DeploymentStore } from '../store/index.js';
import { Deployments } from '../control/deployments.js';
import { createAdminApp, type AdminRouteModule } from '../control/app.js';
import { createFetchServer } from '../control/node-adapter.js';
import { registerServiceBindings } from '../../bindings/service/host.js';
import { registerAssetsBinding } from '../../bindings/assets/host.js';
import { AssetStore } from '../store/assets.js';
import { parseTrustedProxies } from '../data-plane/client-ip.js';
import { parseOriginRules } from '../data-plane/origin.js';
import { createOriginForwarder } from './origins.js';
import { installStandardOps } from './standard-ops.js';
import { installWebSockets } from './websockets.js';
import { installCache } from '../../bindings/cache/host.js';
import { CacheStore } from '../../bindings/cache/store.js';
import { durableObjectRoutes } from '../control/durable-object-routes.js';
import { NodeAliveError } from './object-placement.js';
import { placeObjects, setUpDurableObjects, type DurableObjectServeOptions } from './durable-objects.js';
import { observabilityExtension, type ObservabilityOptions } from './observability.js';
import { CronScheduler, type CronSchedulerOptions } from '../data-plane/cron.js';
import { IpcBus, LocalBus, RedisBus, processOrigin, type Bus } from './bus.js';
import { wireScale, type ScaleWiring } from './scale.js';
import { redisCronClaims, sqliteCronClaims, type CronClaims } from './cron-claims.js';
import { restartRoutes, type RestartControl } from '../control/restart-routes.js';
import { healthHandler, type HealthState } from './health.js';
import { RedisUsageStore } from '../observability/usage-redis.js';
import type { MetricsGatherer } from './supervised.js';

/** What an extension (KV, metering, ...) gets to wire itself into the server. */
export interface ServeContext {
  runtime: Runtime;
  router: Router;
  store: DeploymentStore;
  deployments: Deployments;
  /** absolute path of --data: where an extension keeps its own files */
  dataDir: string;
  logger: Logger;
  /** the cron triggers of this node (null: crons do not run here) */
  scheduler: CronScheduler | null;
  /** this node's name (--node-id) */
  node: string;
  /** how this process hears of, and tells, changes made by the node's other processes and other
   *  nodes (KV invalidations, tail): scale.ts */
  scale: ScaleWiring;
}

export interface ServeExtensionResult {
  /** more admin endpoints, mounted behind the same auth (e.g. {path: "/kv", app}) */
  adminRoutes?: AdminRouteModule[];
  close?(): void | Promise<void>;
}

/** Set up before the stored workers are restored, so ops and listeners exist when they come back. */
export interface ServeExtension {
  name: string;
  setup(context: ServeContext): void | ServeExtensionResult | Promise<void | ServeExtensionResult>;
}

export interface ServeOptions {
  logger: Logger;
  /** data plane; default 8787 on 0.0.0.0 */
  port?: number;
  host?: string;
  /** admin API; default 8788 on 127.0.0.1: exposing it is the operator's explicit choice */
  adminPort?: number;
  adminHost?: string;
  /** default ./.cinder */
  dataDir?: string;
  /** default: CINDER_ADMIN_TOKEN, else the one generated earlier into <data>/admin-token, else a new one */
  token?: string;
  /** largest script accepted by upload, bytes (default 10 MB) */
  maxScriptBytes?: number;
  /** the operator's ceilings on per-worker limits (control/ceilings.ts: defaults, and the hard maximum) */
  limitCeilings?: Partial<Limits>;
  serverTiming?: boolean;
  /** let workers fetch() private, loopback and link-local addresses (off: tenants must not reach the host's network) */
  allowPrivateFetch?: PrivateAllowance;
  runtime?: Partial<RuntimeOptions>;
  /** use this store instead of the SQLite file under dataDir */
  store?: DeploymentStore;
  extensions?: ServeExtension[];
  /** cron trigger settings; false: crons do not run on this node */
  cron?: Partial<Omit<CronSchedulerOptions, 'logger'>> | false;
  /** usage metering, live tail, /metrics, per-worker log levels (observability.ts); false: none */
  observability?: ObservabilityOptions | false;
  /** Durable Objects (objects under <data>/durable-objects/); false: deploys using them are refused */
  durableObjects?: DurableObjectServeOptions | false;
  /** per-deployment snapshots, built after each deploy and stored beside the version (default on;
   *  also off when options.runtime.deploymentSnapshots is false) */
  deploymentSnapshots?: boolean;
  /** this node's name: label node="..." on /metrics, shown by /healthz (default: the host name) */
  nodeId?: string;
  /** Redis URL shared by every node: deployments, versions, routes, secrets, crons (and, through
   *  the KV extension, KV) live there; deploys reach every node through pub/sub */
  redis?: string;
  /** this process is one of several serving processes of the node (`--processes N`, under the
   *  supervisor): the others hear of changes through it, and it sums their metrics */
  cluster?: { processes: number; metrics: MetricsGatherer | null; restart?: RestartControl | null };
  /** the longest a graceful stop (drain) waits for requests and waitUntil work (default 30 s) */
  drainTimeoutMs?: number;
  /** request.cf.colo (default "LOCAL") */
  colo?: string;
  /** addresses or CIDR ranges of proxies in front whose CF-Connecting-IP / X-Forwarded-For /
   *  CF-IPCountry are believed (--trust-proxy); none by default: the socket's peer is the client */
  trustProxy?: string[];
  /** origins for ctx.passThroughOnException(): "PATTERN=URL" (--origin), e.g. "example.com/*=http://10.0.0.5" */
  origins?: string[];
  /** on a route with an origin, how much of a request body the worker read is kept so it can
   *  still be passed through (--origin-body-max; default 1 MiB) */
  originBodyMax?: number;
  /** most static asset files per version (default 20,000, Cloudflare's free-plan count) */
  maxAssetFiles?: number;
}

export interface DrainOptions {
  /**
   * Keep answering the admin port while draining (default true), so a load balancer's /readyz
   * sees 503 "draining" rather than a refused connection. False when only this process of the
   * node stops (a rolling restart): its siblings answer for the node, and a 503 from this one
   * would make the node look unready.
   */
  keepAdmin?: boolean;
}

export interface CinderServer {
  url: string;
  adminUrl: string;
  port: number;
  adminPort: number;
  token: string;
  /** where the token came from; "generated" means it is new and should be shown once */
  tokenSource: 'option' | 'env' | 'file' | 'generated';
  tokenFile: string;
  dataDir: string;
  runtime: Runtime;
  router: Router;
  store: DeploymentStore;
  deployments: Deployments;
  server: http.Server;
  adminServer: http.Server;
  /** workers restored from the store at start */
  restored: { workers: string[]; routes: number; failed: string[] };
  node: string;
  bus: Bus;
  /**
   * Graceful stop: /readyz turns 503, no new connection is accepted, no cron tick starts; requests
   * and invocations in flight (waitUntil work included) finish, up to `timeoutMs` (default
   * drainTimeoutMs); keep-alive connections are closed as their current response ends. Then
   * close(), which flushes usage. `unfinished` counts what the deadline cut.
   */
  drain(timeoutMs?: number, options?: DrainOptions): Promise<{ ms: number; unfinished: { requests: number; invocations: number } }>;
  close(): Promise<void>;
}

export const TOKEN_FILE = 'admin-token';

/** The admin token and where it came from. A generated one is kept (mode 0600) for the next start. */
export function resolveAdminToken(dataDir: string, given?: string): { token: string; source: CinderServer['tokenSource']; file: string } {
  const file = join(dataDir, TOKEN_FILE);
  if (given) return { token: given, source: 'option', file };
  const fromEnv = process.env.CINDER_ADMIN_TOKEN;
  if (fromEnv) return { token: fromEnv, source: 'env', file };
  if (existsSync(file)) {
    const stored = readFileSync(file, 'utf8').trim();
    if (stored) return { token: stored, source: 'file', file };
  }
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, token + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, source: 'generated', file };
}

/**
 * CINDER_DATA_PLANE_LISTEN=reuseport: each serving process binds the data-plane port itself with
 * SO_REUSEPORT (the kernel spreads connections) instead of node:cluster's round-robin through the
 * supervisor. Kept only so that bench/scale.mjs can measure one against the other on a machine
 * (bench/README.md); the default, round-robin, is what a rolling restart loses nothing with.
 */
const REUSE_PORT = process.env.CINDER_DATA_PLANE_LISTEN === 'reuseport';

function listen(server: http.Server, port: number, host: string, reusePort = false): Promise<number> {
  return new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ...(reusePort ? { exclusive: true, reusePort: true } : {}) }, () => {
      server.off('error', reject);
      resolveListen((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  if (!server.listening) return Promise.resolve();
  return new Promise((r) => server.close(() => r()));
}

/** Stop accepting connections (under node:cluster: stop being handed any) and nothing else:
 *  http.Server#close would also cut idle keep-alive connections, which a client may be reusing
 *  at that very moment. Those are closed as their responses end, or once idle a while (drain). */
function stopAccepting(server: http.Server): void {
  if (server.listening) net.Server.prototype.close.call(server);
}

/** Requests being answered on a server, for a drain to wait on; while draining, each response
 *  says Connection: close, so keep-alive clients move to another process or node. */
function trackRequests(server: http.Server, counts: (req: http.IncomingMessage) => boolean, draining: () => boolean) {
  const open = new Set<http.ServerResponse>();
  let counted = 0;
  server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (draining()) res.shouldKeepAlive = false;
    const counting = counts(req);
    if (counting) counted++;
    open.add(res);
    res.once('close', () => {
      open.delete(res);
      if (counting) counted--;
    });
  });
  return {
    count: () => counted,
    endKeepAlive() {
      for (const res of open) if (!res.headersSent) res.shouldKeepAlive = false;
    },
  };
}

const urlHost = (host: string) => (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host);

export async function startServe(options: ServeOptions): Promise<CinderServer> {
  const { logger } = options;
  const dataDir = resolve(options.dataDir ?? DEFAULT_DATA_DIR);
  mkdirSync(dataDir, { recursive: true });
  const { token, source: tokenSource, file: tokenFile } = resolveAdminToken(dataDir, options.token);
  // It travels as "Authorization: Bearer <token>", which cannot carry whitespace.
  if (/\s/.test(token)) throw new Error(`the admin token (${tokenSource === 'env' ? 'CINDER_ADMIN_TOKEN' : tokenFile}) must not contain whitespace`);
  if (token.length < 16) logger.warn('the admin token is shorter than 16 characters; use a long random one');

  const node = options.nodeId ?? hostname();
  // Operator settings are checked before anything starts.
  const trustProxy = options.trustProxy?.length ? parseTrustedProxies(options.trustProxy) : undefined;
  const originRules = options.origins?.length ? parseOriginRules(options.origins) : [];
  const runtime = await Runtime.create({ logger, ...options.runtime });
  const origins = originRules.length ? createOriginForwarder(originRules, options.allowPrivateFetch ?? false) : undefined;
  let store: DeploymentStore;
  try {
    store = options.store ?? (options.redis ? await RedisDeploymentStore.open({ url: options.redis }) : openDeploymentStore(dataDir));
  } catch (error) {
    runtime.close();
    throw error;
  }
  // Redis reaches every process of every node; without it, the supervisor relays between the
  // node's processes; one process alone has nobody to tell.
  const origin = processOrigin(node);
  const bus: Bus = options.redis ? new RedisBus(options.redis, origin) : options.cluster ? new IpcBus(origin) : new LocalBus();
  const redisStore = store instanceof RedisDeploymentStore ? store : null;
  // Worker names and their hosts belong to accounts: the router keeps wildcard routes of one
  // account off the hosts of another's workers.
  const router = new Router((name) => runtime.has(name), (name) => runtime.definition(name)?.account);
  const closers: (() => void | Promise<void>)[] = [installStandardOps(runtime, { allowPrivate: options.allowPrivateFetch ?? false })];
  const webSockets = installWebSockets(runtime, { allowPrivate: options.allowPrivateFetch ?? false });
  closers.push(() => webSockets.close());
  // The Cache API's store: responses workers put, per account, under --data.
  const cacheStore = new CacheStore({ path: join(dataDir, 'cache.sqlite') });
  installCache(runtime, cacheStore);
  closers.push(() => cacheStore.close());
  registerServiceBindings(runtime);
  registerAssetsBinding(runtime);
  const assets = new AssetStore(dataDir);
  let objects: ReturnType<typeof setUpDurableObjects> | null = null;
  let objectRoutes: AdminRouteModule | null = null;
  if (options.durableObjects !== false && (redisStore || options.cluster)) {
    // One holder per object across every process and node (Redis), or across this node's
    // serving processes (app/object-placement.ts).
    const placed = await placeObjects(runtime, dataDir, logger, node, redisStore ? { redis: redisStore } : { local: true }, options.durableObjects, webSockets);
    closers.push(() => placed.service.close(), () => placed.close());
    objects = placed;
    if (redisStore) objectRoutes = { path: '/durable-objects', app: durableObjectRoutes(placed.placement, (error) => error instanceof NodeAliveError) };
  } else if (options.durableObjects !== false) {
    objects = setUpDurableObjects(runtime, dataDir, logger, options.durableObjects);
    closers.push(() => objects!.service.close());
  }
  const deployments = new Deployments({
    runtime,
    router,
    store,
    logger,
    maxScriptBytes: options.maxScriptBytes,
    ceilings: options.limitCeilings,
    snapshots: options.deploymentSnapshots !== false && runtime.snapshots !== null,
    assets,
    assetLimits: { maxFiles: options.maxAssetFiles },
    durableObjects: objects?.deploys,
  });

  const scale = wireScale({ bus, deployments, logger, node });
  closers.push(() => scale.close(), () => bus.close());

  // Cron triggers are the data plane's (data-plane/cron.ts), kept in step with what is deployed;
  // deploys, rollbacks and restores at start all come through here (restore runs after setup).
  // With other processes or nodes scheduling the same crons, each tick is claimed (cron-claims.ts).
  let claims: CronClaims | null = null;
  if (options.cron !== false && !options.cron?.claim) {
    if (redisStore) claims = redisCronClaims(redisStore.client, node);
    else if (options.cluster) claims = sqliteCronClaims(join(dataDir, 'cron-claims.sqlite'));
  }
  if (claims) closers.push(() => claims.close());
  const scheduler = options.cron === false ? null : new CronScheduler(runtime, { ...options.cron, ...(claims ? { claim: claims.claim } : {}), logger });
  if (scheduler) {
    deployments.onChange((event) => {
      if (event.type === 'deployed') scheduler.sync(event.worker, event.version.crons ?? []);
      else if (event.type === 'deleted') scheduler.unschedule(event.worker);
    });
    closers.push(() => scheduler.close());
  }

  // POST /restart: a rolling restart of this node's processes, by its supervisor.
  const adminRoutes: AdminRouteModule[] = [{ path: '/restart', app: restartRoutes(options.cluster?.restart ?? null) }];
  if (objectRoutes) adminRoutes.push(objectRoutes);
  if (origins) closers.push(() => origins.close());
  const server = createIngress({ runtime, router, logger, serverTiming: options.serverTiming ?? true, exposeErrors: false, webSockets, colo: options.colo, trustProxy, origins, originBodyMax: options.originBodyMax });
  let adminServer: http.Server | undefined;
  try {
    const gatherer = options.cluster?.metrics ?? null;
    const observability =
      options.observability === false
        ? []
        : [
            observabilityExtension(
              {
                ...(redisStore && !options.observability?.usageStore ? { usageStore: new RedisUsageStore(redisStore.client, node) } : {}),
                ...options.observability,
                node,
                gather: gatherer ? () => gatherer.gather() : undefined,
              },
              (ready) => {
                scale.attachTail(ready.tail);
                gatherer?.answerWith(() => ready.metrics.json());
              },
            ),
          ];
    for (const extension of [...observability, ...(options.extensions ?? [])]) {
      const result = await extension.setup({ runtime, router, store, deployments, dataDir, logger, scheduler, node, scale });
      if (result?.adminRoutes) adminRoutes.push(...result.adminRoutes);
      if (result?.close) closers.push(result.close);
    }
    // Subscribed before the restore: a deploy made elsewhere meanwhile is heard, not missed.
    if (bus instanceof RedisBus) await bus.ready();
    const restored = await deployments.restore();
    void deployments.collectAssets().catch((error) => logger.warn({ err: error }, 'collecting static assets failed'));
    // Alarms stored before a restart fire once the workers they belong to are back.
    objects?.service.startAlarms();
    logger.info({ workers: restored.workers.length, routes: restored.routes, failed: restored.failed }, `restored ${restored.workers.length} workers and ${restored.routes} routes from ${dataDir}`);

    const adminApp = createAdminApp({ deployments, token, logger, modules: adminRoutes });
    const health: HealthState = { node, phase: 'starting', processes: options.cluster?.processes ?? 1, redis: redisStore ? () => redisStore.connected : null };
    const answerHealth = healthHandler(health);
    const adminHttp = createFetchServer((request) => answerHealth(request) ?? adminApp.fetch(request), logger);
    adminServer = adminHttp;
    const isDraining = () => health.phase === 'draining';
    const dataRequests = trackRequests(server, () => true, isDraining);
    // A live tail is a stream that never ends by itself: not waited for (its client reconnects).
    const adminRequests = trackRequests(adminHttp, (req) => !/\/tail(\?|$)/.test(req.url ?? ''), isDraining);

    const host = options.host ?? '0.0.0.0';
    const adminHost = options.adminHost ?? '127.0.0.1';
    const port = await listen(server, options.port ?? 8787, host, REUSE_PORT);
    const adminPort = await listen(adminHttp, options.adminPort ?? 8788, adminHost);
    const url = `http://${urlHost(host)}:${port}`;
    const adminUrl = `http://${urlHost(adminHost)}:${adminPort}`;
    health.phase = 'ready';
    logger.info({ url, adminUrl, dataDir, node, bus: bus.kind, store: redisStore ? `redis ${redisStore.label}` : 'sqlite' }, `cinder serve: data plane on ${url}, admin API on ${adminUrl}`);

    let closing: Promise<void> | null = null;
    let draining: ReturnType<CinderServer['drain']> | null = null;
    const drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
    return {
      url,
      adminUrl,
      port,
      adminPort,
      token,
      tokenSource,
      tokenFile,
      dataDir,
      runtime,
      router,
      store,
      deployments,
      server,
      adminServer: adminHttp,
      restored,
      node,
      bus,
      drain(timeoutMs = drainTimeoutMs, drainOptions = {}) {
        draining ??= (async () => {
          const started = Date.now();
          health.phase = 'draining';
          scheduler?.close();
          stopAccepting(server);
          if (drainOptions.keepAdmin === false) stopAccepting(adminHttp);
          dataRequests.endKeepAlive();
          adminRequests.endKeepAlive();
          logger.info({ timeoutMs, requests: dataRequests.count(), invocations: runtime.pendingInvocations() }, 'draining: no new connections; finishing what is in flight');
          const busy = () => dataRequests.count() + adminRequests.count() > 0 || runtime.pendingInvocations() > 0;
          // An idle keep-alive connection is closed only after a grace period: a busy client sends
          // on it (and gets Connection: close) long before; closing it at once races a client
          // that is reusing it right now.
          const idleGraceMs = Math.min(1000, timeoutMs / 2);
          while (Date.now() - started < timeoutMs && (busy() || Date.now() - started < idleGraceMs)) {
            if (Date.now() - started >= idleGraceMs) {
              server.closeIdleConnections();
              adminHttp.closeIdleConnections();
            }
            await new Promise((r) => setTimeout(r, 20));
          }
          const unfinished = { requests: dataRequests.count() + adminRequests.count(), invocations: runtime.pendingInvocations() };
          const ms = Date.now() - started;
          if (unfinished.requests || unfinished.invocations) logger.warn({ ...unfinished, ms }, `drain deadline (${timeoutMs} ms) reached: cutting what is still in flight`);
          else logger.info({ ms }, `drained in ${ms} ms`);
          await close();
          return { ms, unfinished };
        })();
        return draining;
      },
      close,
    };
    function close(): Promise<void> {
      closing ??= (async () => {
        health.phase = 'draining';
        await Promise.all([closeServer(server), closeServer(adminHttp)]);
        for (const closer of closers.reverse()) await closer();
        runtime.close();
        await store.close();
      })();
      return closing;
    }
  } catch (error) {
    await Promise.all([closeServer(server), adminServer ? closeServer(adminServer) : undefined]);
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => {});
    runtime.close();
    await store.close();
    throw error;
  }
}
