// `cinder serve`: the multi-tenant server. The data plane (workers, by route or by host) listens on
// one port and the admin API (upload, versions, routes; bearer auth) on another, so the admin port
// can stay on a private interface. At start every worker, its live version and every route come
// back from the deployment store under --data.
import type { PrivateAllowance } from '../../bindings/fetch/address-policy.js';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Runtime, type RuntimeOptions } from '../runtime/runtime.js';
import type { Limits } from '../model/limits.js';
import { createIngress } from '../data-plane/ingress.js';
import { Router } from '../data-plane/router.js';
import { DEFAULT_DATA_DIR, openDeploymentStore, type DeploymentStore } from '../store/index.js';
import { Deployments } from '../control/deployments.js';
import { createAdminApp, type AdminRouteModule } from '../control/app.js';
import { createFetchServer } from '../control/node-adapter.js';
import { registerServiceBindings } from '../../bindings/service/host.js';
import { installStandardOps } from './standard-ops.js';
import { installWebSockets } from './websockets.js';
import { installCache } from '../../bindings/cache/host.js';
import { CacheStore } from '../../bindings/cache/store.js';
import { observabilityExtension, type ObservabilityOptions } from './observability.js';
import { CronScheduler, type CronSchedulerOptions } from '../data-plane/cron.js';

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
  /** per-deployment snapshots, built after each deploy and stored beside the version (default on;
   *  also off when options.runtime.deploymentSnapshots is false) */
  deploymentSnapshots?: boolean;
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

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolveListen((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
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

  const runtime = await Runtime.create({ logger, ...options.runtime });
  let store: DeploymentStore;
  try {
    store = options.store ?? openDeploymentStore(dataDir);
  } catch (error) {
    runtime.close();
    throw error;
  }
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
  const deployments = new Deployments({ runtime, router, store, logger, maxScriptBytes: options.maxScriptBytes, ceilings: options.limitCeilings, snapshots: options.deploymentSnapshots !== false && runtime.snapshots !== null });

  // Cron triggers are the data plane's (data-plane/cron.ts), kept in step with what is deployed;
  // deploys, rollbacks and restores at start all come through here (restore runs after setup).
  const scheduler = options.cron === false ? null : new CronScheduler(runtime, { ...options.cron, logger });
  if (scheduler) {
    deployments.onChange((event) => {
      if (event.type === 'deployed') scheduler.sync(event.worker, event.version.crons ?? []);
      else if (event.type === 'deleted') scheduler.unschedule(event.worker);
    });
    closers.push(() => scheduler.close());
  }

  const adminRoutes: AdminRouteModule[] = [];
  const server = createIngress({ runtime, router, logger, serverTiming: options.serverTiming ?? true, exposeErrors: false, webSockets });
  let adminServer: http.Server | undefined;
  try {
    for (const extension of [...(options.observability === false ? [] : [observabilityExtension(options.observability)]), ...(options.extensions ?? [])]) {
      const result = await extension.setup({ runtime, router, store, deployments, dataDir, logger, scheduler });
      if (result?.adminRoutes) adminRoutes.push(...result.adminRoutes);
      if (result?.close) closers.push(result.close);
    }
    const restored = await deployments.restore();
    logger.info({ workers: restored.workers.length, routes: restored.routes, failed: restored.failed }, `restored ${restored.workers.length} workers and ${restored.routes} routes from ${dataDir}`);

    const adminApp = createAdminApp({ deployments, token, logger, modules: adminRoutes });
    const adminHttp = createFetchServer((request) => adminApp.fetch(request), logger);
    adminServer = adminHttp;

    const host = options.host ?? '0.0.0.0';
    const adminHost = options.adminHost ?? '127.0.0.1';
    const port = await listen(server, options.port ?? 8787, host);
    const adminPort = await listen(adminHttp, options.adminPort ?? 8788, adminHost);
    const url = `http://${urlHost(host)}:${port}`;
    const adminUrl = `http://${urlHost(adminHost)}:${adminPort}`;
    logger.info({ url, adminUrl, dataDir }, `cinder serve: data plane on ${url}, admin API on ${adminUrl}`);

    let closing: Promise<void> | null = null;
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
      close() {
        closing ??= (async () => {
          await Promise.all([closeServer(server), closeServer(adminHttp)]);
          for (const close of closers.reverse()) await close();
          runtime.close();
          await store.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await Promise.all([closeServer(server), adminServer ? closeServer(adminServer) : undefined]);
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => {});
    runtime.close();
    await store.close();
    throw error;
  }
}
