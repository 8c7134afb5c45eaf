// `cinder dev`: serve workers from disk on one port, rebuilding each when its sources, its
// wrangler config or its .dev.vars change. Also what `npm start` runs over examples/. Workers are
// reached as <name>.localhost (or any Host whose first label is the name); the first (or
// --default) worker answers everything else. Workers served together reach each other through
// service bindings. KV data and the Cache API's entries live in memory, or under --persist-to (the
// CLI's default: <project>/.cinder/state), so they outlive a restart.
import { DevAssets, type DevAssetsOptions } from './dev-assets.js';
import { registerAssetsBinding } from '../../bindings/assets/host.js';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, watch, type FSWatcher } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import type { Logger } from 'pino';
import { bundleWorker, runBuildStep, type BuildStep, type BundleOptions } from './bundle.js';
import { formatBuildError } from './build-errors.js';
import { Runtime, type RuntimeOptions } from '../runtime/runtime.js';
import { contentHash, type BindingConfig, type DurableObjectMigration, type QueueConsumerSpec, type WorkerDefinition } from '../model/worker-definition.js';
import { setUpDurableObjects, type DurableObjectServeOptions } from './durable-objects.js';
import { DEFAULT_MAX_LIVE_OBJECTS } from '../model/live-object-caps.js';
import type { Limits } from '../model/limits.js';
import { createIngress } from '../data-plane/ingress.js';
import { createKVService, installKV, kvBindings, KVService, MemoryBackend } from '../../bindings/kv/index.js';
import { registerServiceBindings } from '../../bindings/service/host.js';
import { D1Service, installD1 } from '../../bindings/d1/index.js';
import { installR2, R2Store } from '../../bindings/r2/index.js';
import { consumerConfig, installQueueProducers, QueueConsumers, QueueStore } from '../../bindings/queues/index.js';
import { Router } from '../data-plane/router.js';
import { installStandardOps } from './standard-ops.js';
import { installWebSockets } from './websockets.js';
import { installCache } from '../../bindings/cache/host.js';
import { CacheStore } from '../../bindings/cache/store.js';
import { installDevEndpoints } from './dev-endpoints.js';
import { InspectorServer } from './inspector.js';
import { SourceMaps } from './dev-source-maps.js';

/** One worker `cinder dev` serves: a wrangler project (cli/dev-project.ts) or a plain file. */
export interface DevWorkerSource {
  name: string;
  /** absolute path of the entry module; none for a project of static assets only */
  entry?: string;
  bindings: Record<string, BindingConfig>;
  limits?: Partial<Limits>;
  /** files besides the sources whose change (or creation) re-reads the worker: its wrangler
   *  config, its .dev.vars */
  settingsFiles?: string[];
  /** read the worker's settings again from disk */
  reread?: () => DevWorkerSource;
  compatibilityDate?: string;
  /** how it is bundled (a wrangler project's rules and compatibility flags) */
  bundle?: BundleOptions;
  /** a wrangler project's build.command: run before the first bundle, and again (then a reload)
   *  when a file under its watch directories changes */
  build?: BuildStep;
  /** queues it consumes (wrangler's queues.consumers) */
  queueConsumers?: QueueConsumerSpec[];
  /** a wrangler project's [assets]: served from the directory, read again when it changes */
  assets?: DevAssetsOptions;
  /** a wrangler project's Durable Object migrations ([[migrations]]) */
  migrations?: DurableObjectMigration[];
}

export interface DevOptions {
  /** Durable Objects' settings (idle eviction, alarm retries); their storage is under persistTo
   *  (else a temporary directory removed when dev stops) */
  durableObjects?: DurableObjectServeOptions;
  /** worker files, or directories whose top-level .js/.ts files are each a worker */
  paths?: string[];
  /** workers with their own bindings (wrangler projects); served before `paths` */
  workers?: DevWorkerSource[];
  port?: number;
  host?: string;
  defaultWorker?: string;
  /** bindings of the workers from `paths` */
  bindings?: Record<string, BindingConfig>;
  limits?: Partial<Limits>;
  watch?: boolean;
  serverTiming?: boolean;
  logger: Logger;
  runtime?: Partial<RuntimeOptions>;
  /** `--kv NAME`: bind env.NAME to KV namespace NAME in every worker */
  kvNamespaces?: string[];
  /** where those namespaces live (default: under persistTo, else in memory) */
  kvService?: KVService;
  /** how the workers from `paths` are bundled */
  bundle?: BundleOptions;
  /** a build.command for the workers from `paths` (see DevWorkerSource.build) */
  build?: BuildStep;
  /** keep dev state (KV, Cache, D1, R2, Queues) in this directory; default: in memory (D1, R2 and
   *  Queues in a temporary directory), for this process only */
  persistTo?: string;
  /** `--inspect`: Chrome DevTools inspector on this address (server/inspector.ts) */
  inspect?: { port?: number; host?: string };
  /** colour esbuild's code frames */
  color?: boolean;
  /** told of each source map, so log lines can be mapped too (dev-log.ts) */
  onSourceMaps?: (maps: SourceMaps) => void;
}

export interface DevServer {
  url: string;
  port: number;
  runtime: Runtime;
  router: Router;
  server: http.Server;
  /** the KV service behind the workers' KV bindings, once one uses KV */
  kv: KVService | null;
  /** the D1 service behind d1 bindings, once a worker binds one */
  readonly d1: D1Service | null;
  /** the DevTools inspector, with --inspect */
  inspector: InspectorServer | null;
  sourceMaps: SourceMaps;
  /** rebuild and redeploy one worker from disk now */
  reload(name: string): Promise<void>;
  close(): Promise<void>;
}

const WORKER_FILE = /\.(js|mjs|ts|mts)$/;
const DEBOUNCE_MS = 100;

export function workerNameFromFile(file: string): string {
  return basename(file, extname(file)).toLowerCase().replace(/[^a-z0-9-]/g, '-');
}

function expandPaths(paths: string[]): string[] {
  const files: string[] = [];
  for (const p of paths.map((x) => resolve(x))) {
    if (!existsSync(p)) throw new Error(`no such file or directory: ${p}`);
    if (statSync(p).isDirectory()) {
      const before = files.length;
      for (const entry of readdirSync(p).sort()) {
        const full = join(p, entry);
        if (WORKER_FILE.test(entry) && !entry.endsWith('.d.ts') && statSync(full).isFile()) files.push(full);
      }
      if (files.length === before) throw new Error(`no worker files found in ${p}`);
    } else {
      files.push(p);
    }
  }
  return files;
}

/** A worker being served: what it was read from, and its pending reload. */
interface Served {
  source: DevWorkerSource;
  /** its settings changed: read them again before the next build */
  stale: boolean;
  timer: NodeJS.Timeout | null;
  /** reloads of one worker run one after another */
  queue: Promise<void>;
}

export async function startDev(options: DevOptions): Promise<DevServer> {
  const { logger } = options;
  // A build command may be what makes the entry: each runs first (wrangler's order), once.
  const builds = new Map<string, BuildStep>();
  for (const step of [options.build, ...(options.workers ?? []).map((w) => w.build)]) if (step) builds.set(`${step.cwd}\0${step.command}`, step);
  for (const step of builds.values()) await runBuildStep(step);
  const extraKV = kvBindings(options.kvNamespaces ?? []);
  const sources: DevWorkerSource[] = [
    ...(options.workers ?? []),
    ...expandPaths(options.paths ?? []).map((file) => ({ name: workerNameFromFile(file), entry: file, bindings: options.bindings ?? {}, limits: options.limits, bundle: options.bundle, build: options.build })),
  ];
  if (!sources.length) throw new Error('no workers to serve');
  const names = new Set<string>();
  for (const source of sources) {
    if (names.has(source.name)) throw new Error(`two workers are named "${source.name}"; each worker in one cinder dev needs its own name`);
    names.add(source.name);
  }
  // Inspecting: isolates with inspector support, one per worker and kept while idle, so the
  // DevTools session stays on the isolate that serves the requests.
  const inspecting = options.inspect ? { inspector: true, maxIsolatesPerWorker: 1, idleTtlMs: 24 * 3600_000 } : {};
  const runtime = await Runtime.create({ logger, ...inspecting, ...options.runtime });
  // Developers call their own local APIs: private addresses are allowed in dev.
  const closeOps = installStandardOps(runtime, { allowPrivate: true });
  const webSockets = installWebSockets(runtime, { allowPrivate: true });
  registerServiceBindings(runtime);
  registerAssetsBinding(runtime);
  const assetDirs = new Map<string, DevAssets>();
  // The Cache API in dev: kept beside KV under persistTo, else in memory (gone when dev stops).
  if (options.persistTo) mkdirSync(options.persistTo, { recursive: true });
  const cacheStore = new CacheStore({ path: options.persistTo ? join(options.persistTo, 'cache.sqlite') : ':memory:' });
  installCache(runtime, cacheStore);
  const router = new Router((name) => runtime.has(name));
  const sourceMaps = new SourceMaps();
  options.onSourceMaps?.(sourceMaps);
  const served = new Map<string, Served>(sources.map((source) => [source.name, { source, stale: false, timer: null, queue: Promise.resolve() }]));

  // KV, opened when a worker first binds a namespace (a config edit may add one).
  let kv: KVService | null = null;
  const ensureKV = (bindings: Record<string, BindingConfig>) => {
    if (kv || !Object.values(bindings).some((binding) => binding.type === 'kv_namespace')) return;
    if (options.kvService) kv = options.kvService;
    else if (options.persistTo) {
      mkdirSync(options.persistTo, { recursive: true });
      kv = createKVService({ data: options.persistTo });
    } else kv = new KVService({ backend: new MemoryBackend() });
    installKV(runtime, kv);
  };

  // Durable Objects, set up when a worker first binds a namespace or has migrations.
  let objects: ReturnType<typeof setUpDurableObjects> | null = null;
  let objectsTempDir: string | null = null;
  let started = false;
  const ensureObjects = () => {
    if (objects) return objects;
    if (!options.persistTo) objectsTempDir = mkdtempSync(join(tmpdir(), 'cinder-dev-objects-'));
    // One developer, one account: it may hold every live slot.
    const objectOptions = { ...options.durableObjects, maxLivePerAccount: options.durableObjects?.maxLivePerAccount ?? options.durableObjects?.maxLive ?? DEFAULT_MAX_LIVE_OBJECTS };
    objects = setUpDurableObjects(runtime, options.persistTo ?? objectsTempDir!, logger, objectOptions);
    if (started) objects.service.startAlarms();
    return objects;
  };
  /** As a deploy does: a worker's Durable Object bindings and migrations are checked against the
   *  classes it exports, and applied before it serves. */
  const prepareObjects = async (source: DevWorkerSource, def: WorkerDefinition) => {
    const migrations = source.migrations ?? [];
    if (!migrations.length && !Object.values(def.bindings).some((binding) => binding.type === 'durable_object_namespace')) return;
    const { deploys } = ensureObjects();
    const { error, exportedClasses } = await runtime.inspect(def);
    if (error) throw new Error(`${source.name} failed to load: ${error}`);
    await deploys.apply(await deploys.plan({ account: '', script: source.name, bindings: def.bindings, migrations, exportedClasses }));
  };

  // D1, R2 and Queues, opened when a worker first binds one (or consumes a queue): files under
  // persistTo (what `cinder d1 execute --local` reads), else in a directory for this process only.
  let dataDir: string | null = null;
  const dataDirOf = () => (dataDir ??= options.persistTo ?? mkdtempSync(join(tmpdir(), 'cinder-dev-state-')));
  let d1: D1Service | null = null;
  let r2: R2Store | null = null;
  let queueStore: QueueStore | null = null;
  let queueConsumers: QueueConsumers | null = null;
  const ensureData = (worker: string, bindings: Record<string, BindingConfig>, consumers: QueueConsumerSpec[] | undefined) => {
    const types = new Set(Object.values(bindings).map((binding) => binding.type));
    if (!d1 && types.has('d1')) installD1(runtime, (d1 = new D1Service({ dataDir: dataDirOf() })));
    if (!r2 && types.has('r2_bucket')) installR2(runtime, (r2 = new R2Store({ root: join(dataDirOf(), 'r2') })));
    if (!queueStore && (types.has('queue') || consumers?.length)) {
      mkdirSync(dataDirOf(), { recursive: true });
      const store = (queueStore = new QueueStore(join(dataDirOf(), 'queues.sqlite')));
      const active = (queueConsumers = new QueueConsumers({ store, dispatch: (name, queue, batch) => runtime.queue(name, queue, batch), onError: (error, where) => logger.error({ worker: where.worker, queue: where.queue, err: String(error) }, 'queue consumer failed') }));
      installQueueProducers(runtime, store, (ref) => active.wake(ref));
    }
    queueConsumers?.set(worker, 'default', (consumers ?? []).map(consumerConfig));
  };

  // Watching directories, not files: editors save by writing a new file and renaming it over the
  // old one (vim, JetBrains, sed -i), which a watch on the old file's inode would never see again.
  const directories = new Map<string, FSWatcher>();
  /** path -> the workers to rebuild (source) or re-read (settings) when it changes */
  const watchedSources = new Map<string, Set<Served>>();
  const watchedSettings = new Map<string, Set<Served>>();
  let closed = false;

  const schedule = (worker: Served, stale: boolean) => {
    if (closed) return;
    worker.stale ||= stale;
    if (worker.timer) clearTimeout(worker.timer);
    worker.timer = setTimeout(() => {
      worker.timer = null;
      worker.queue = worker.queue.then(() => reloadQuietly(worker));
    }, DEBOUNCE_MS);
  };

  const watchPath = (path: string, worker: Served, table: Map<string, Set<Served>>) => {
    if (!options.watch) return;
    const full = resolve(path);
    if (full.split(sep).includes('node_modules')) return;
    let set = table.get(full);
    if (!set) table.set(full, (set = new Set()));
    set.add(worker);
    const dir = dirname(full);
    if (directories.has(dir) || !existsSync(dir)) return;
    try {
      const watcher = watch(dir, (_event, filename) => {
        const changed = filename ? join(dir, filename.toString()) : null;
        for (const [table, stale] of [[watchedSources, false], [watchedSettings, true]] as const) {
          for (const [path, workers] of table) {
            if (changed ? path === changed : dirname(path) === dir) for (const w of workers) schedule(w, stale);
          }
        }
      });
      watcher.on('error', () => directories.delete(dir));
      directories.set(dir, watcher);
    } catch {
      // A directory that vanished: the next successful build watches what it read then.
    }
  };

  async function load(worker: Served): Promise<void> {
    if (worker.stale) {
      const fresh = worker.source.reread?.() ?? worker.source;
      worker.stale = false;
      if (fresh.name !== worker.source.name) throw new Error(`the worker's name changed from "${worker.source.name}" to "${fresh.name}": restart cinder dev to serve it under the new name`);
      worker.source = fresh;
    }
    const { source } = worker;
    for (const file of source.settingsFiles ?? []) watchPath(file, worker, watchedSettings);
    let bundle: Awaited<ReturnType<typeof bundleWorker>> = { main: '', modules: [], inputs: [] };
    if (source.entry) watchPath(source.entry, worker, watchedSources);
    if (!source.entry && !source.assets) throw new Error(`${source.name} has neither an entry module nor assets`);
    try {
      // No entry: static assets only, a version with no code (as `cinder deploy` uploads it).
      if (source.entry) bundle = await bundleWorker(source.entry, { ...source.bundle, mode: 'development', sourcemap: true });
    } catch (error) {
      // Watch the files the errors are in too, so fixing any of them rebuilds.
      for (const message of (error as { errors?: { location?: { file?: string } | null }[] }).errors ?? []) {
        if (message.location?.file) watchPath(message.location.file, worker, watchedSources);
      }
      throw new Error(`could not build ${source.name}:\n${formatBuildError(error, { color: options.color })}`);
    }
    for (const input of bundle.inputs) watchPath(input, worker, watchedSources);
    const bindings: Record<string, BindingConfig> = { ...extraKV, ...source.bindings };
    let assets: DevAssets | undefined;
    // A config edit may move the directory or change its handling: the assets are opened again.
    const openedAssets = assetDirs.get(source.name);
    if (openedAssets && JSON.stringify(openedAssets.options) !== JSON.stringify(source.assets)) {
      openedAssets.close();
      assetDirs.delete(source.name);
    }
    if (source.assets) {
      assets = assetDirs.get(source.name);
      if (!assets) {
        const opened = await DevAssets.open(source.assets, logger);
        assets = opened;
        assetDirs.set(source.name, opened);
        // A changed file is a new version (its isolates see the new env.ASSETS too).
        opened.watch(() => {
          worker.queue = worker.queue.then(() => load(worker)).catch((error) => logger.error({ worker: source.name, err: (error as Error).message }, 'reload after an asset change failed'));
        });
      }
      if (source.assets.binding) bindings[source.assets.binding] = { type: 'assets' };
    }
    ensureKV(bindings);
    ensureData(source.name, bindings, source.queueConsumers);
    const limits = options.inspect ? { cpuMs: 1000, wallMs: 3600_000, ...source.limits } : source.limits;
    // The version changes with the code and with the settings, so a config edit alone reloads.
    const settingsHash = createHash('sha256').update(JSON.stringify({ bindings, limits, date: source.compatibilityDate, flags: source.bundle?.compatibilityFlags, assets: source.assets })).digest('hex');
    const def: WorkerDefinition = {
      name: source.name,
      version: createHash('sha256').update(contentHash(bundle.modules)).update(settingsHash).update(assets?.current.manifestHash ?? '').digest('hex').slice(0, 16),
      assets: assets?.current,
      main: bundle.main,
      modules: bundle.modules,
      bindings,
      compatibilityDate: source.compatibilityDate,
      compatibilityFlags: source.bundle?.compatibilityFlags?.length ? source.bundle.compatibilityFlags : undefined,
      // Inspected code runs slower (and DevTools evaluations count as CPU), and a request paused at
      // a breakpoint must not hit the 30 s wall limit: roomier defaults, unless limits are given.
      limits,
    };
    const current = runtime.definition(source.name);
    if (current?.version === def.version) return;
    await prepareObjects(source, def);
    sourceMaps.set(source.name, bundle.main, bundle.sourceMap);
    runtime.deploy(def);
    if (current) logger.info({ worker: source.name, version: def.version }, `reloaded ${source.name}`);
  }

  /** Run a build command again when its sources change, then reload the workers it builds. */
  function watchBuild(step: BuildStep): void {
    let timer: NodeJS.Timeout | null = null;
    let running: Promise<void> = Promise.resolve();
    const rebuild = () => {
      running = running.then(async () => {
        try {
          await runBuildStep(step);
        } catch (error) {
          logger.error({ err: (error as Error).message }, 'build.command failed; still serving the previous version');
          return;
        }
        for (const worker of served.values()) {
          if (worker.source.build?.command === step.command && worker.source.build.cwd === step.cwd) await (worker.queue = worker.queue.then(() => reloadQuietly(worker)));
        }
      });
    };
    for (const dir of step.watchDirs) {
      if (!existsSync(dir)) continue;
      const watcher = watch(dir, { recursive: true }, () => {
        if (closed) return;
        if (timer) clearTimeout(timer);
        timer = setTimeout(rebuild, DEBOUNCE_MS);
      });
      directories.set(`build:${dir}:${step.command}`, watcher);
    }
  }

  async function reloadQuietly(worker: Served): Promise<void> {
    try {
      await load(worker);
    } catch (error) {
      // Keep serving the last good version (if any); say what is wrong; the next save retries.
      const serving = runtime.has(worker.source.name) ? 'still serving the previous version' : 'not serving it until it builds';
      logger.error({ worker: worker.source.name, file: worker.source.entry, err: (error as Error).message }, `reload of ${worker.source.name} failed; ${serving}`);
    }
  }

  // A worker that does not build at start is reported and watched; the server starts anyway, so a
  // fix is picked up without a restart.
  for (const worker of served.values()) {
    try {
      await load(worker);
    } catch (error) {
      if (!options.watch) throw error;
      logger.error({ worker: worker.source.name, file: worker.source.entry, err: (error as Error).message }, `${worker.source.name} does not build; fix it and it loads`);
    }
  }
  started = true;
  (objects as ReturnType<typeof setUpDurableObjects> | null)?.service.startAlarms();
  if (options.watch) for (const step of builds.values()) watchBuild(step);
  router.defaultWorker = options.defaultWorker ?? sources[0].name;

  const mapError = (worker: string, text: string) => sourceMaps.map(worker, text);
  const server = createIngress({ runtime, router, logger, serverTiming: options.serverTiming, exposeErrors: true, mapError, webSockets });
  installDevEndpoints(server, { runtime, router, logger, mapError }); // /__scheduled
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8787, options.host ?? '127.0.0.1', () => resolveListen());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  let inspector: InspectorServer | null = null;
  if (options.inspect) {
    try {
      inspector = await InspectorServer.start({ runtime, logger, port: options.inspect.port, host: options.inspect.host });
    } catch (error) {
      server.closeAllConnections();
      server.close();
      runtime.close();
      throw new Error(`--inspect: cannot listen on ${options.inspect.host ?? '127.0.0.1'}:${options.inspect.port ?? 9229}: ${(error as Error).message}`);
    }
  }

  return {
    url,
    port,
    runtime,
    router,
    server,
    get kv() {
      return kv;
    },
    get d1() {
      return d1;
    },
    inspector,
    sourceMaps,
    async reload(name: string) {
      const worker = served.get(name);
      if (!worker) throw new Error(`no worker ${name}`);
      await (worker.queue = worker.queue.then(() => load(worker)));
    },
    async close() {
      closed = true;
      for (const w of directories.values()) w.close();
      for (const a of assetDirs.values()) a.close();
      for (const worker of served.values()) if (worker.timer) clearTimeout(worker.timer);
      await inspector?.close();
      webSockets.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      objects?.service.close();
      runtime.close();
      if (objectsTempDir) rmSync(objectsTempDir, { recursive: true, force: true });
      await closeOps();
      cacheStore.close();
      // A service the caller passed in is the caller's to close.
      if (kv && !options.kvService) await kv.close();
      await queueConsumers?.close();
      await queueStore?.close();
      d1?.close();
      r2?.close();
      if (dataDir && !options.persistTo) rmSync(dataDir, { recursive: true, force: true });
      d1?.close();
      r2?.close();
      await queueConsumers?.close();
      await queueStore?.close();
    },
  };
}
