// `cinder dev`: serve worker files from disk on one port, reloading each when its sources change.
// Also what `npm start` runs over examples/. Workers are reached as <name>.localhost (or any
// Host whose first label is the name); the first (or --default) worker answers everything else.
import { existsSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import type { Logger } from 'pino';
import { bundleWorker, runBuildStep, type BuildStep, type BundleOptions } from './bundle.js';
import { Runtime, type RuntimeOptions } from '../runtime/runtime.js';
import { contentHash, type BindingConfig, type WorkerDefinition } from '../model/worker-definition.js';
import type { Limits } from '../model/limits.js';
import { createIngress } from '../data-plane/ingress.js';
import { installKV, kvBindings, KVService, MemoryBackend } from '../../bindings/kv/index.js';
import { Router } from '../data-plane/router.js';
import { installStandardOps } from './standard-ops.js';
import { installCache } from '../../bindings/cache/host.js';
import { CacheStore } from '../../bindings/cache/store.js';
import { installDevEndpoints } from './dev-endpoints.js';
import { InspectorServer } from './inspector.js';

export interface DevOptions {
  /** worker files, or directories whose top-level .js/.ts files are each a worker */
  paths: string[];
  port?: number;
  host?: string;
  defaultWorker?: string;
  bindings?: Record<string, BindingConfig>;
  limits?: Partial<Limits>;
  watch?: boolean;
  serverTiming?: boolean;
  logger: Logger;
  runtime?: Partial<RuntimeOptions>;
  /** `--kv NAME`: bind env.NAME to KV namespace NAME in every worker */
  kvNamespaces?: string[];
  /** where those namespaces live (default: in memory, for this process only) */
  kvService?: KVService;
  /** a wrangler project's compatibility_date, kept on the definition as a deploy keeps it */
  compatibilityDate?: string;
  /** how workers are bundled (a wrangler project's rules and compatibility flags) */
  bundle?: BundleOptions;
  /** a wrangler project's build.command: run before the first bundle, and again (then a reload)
   *  when a file under its watch directories changes */
  build?: BuildStep;
  /** `--inspect`: Chrome DevTools inspector on this address (server/inspector.ts) */
  inspect?: { port?: number; host?: string };
}

export interface DevServer {
  url: string;
  port: number;
  runtime: Runtime;
  router: Router;
  server: http.Server;
  /** the KV service behind --kv namespaces, if any */
  kv: KVService | null;
  /** the DevTools inspector, with --inspect */
  inspector: InspectorServer | null;
  /** rebuild and redeploy one worker from disk now */
  reload(name: string): Promise<void>;
  close(): Promise<void>;
}

const WORKER_FILE = /\.(js|mjs|ts|mts)$/;

export function workerNameFromFile(file: string): string {
  return basename(file, extname(file)).toLowerCase().replace(/[^a-z0-9-]/g, '-');
}

function expandPaths(paths: string[]): string[] {
  const files: string[] = [];
  for (const p of paths.map((x) => resolve(x))) {
    if (!existsSync(p)) throw new Error(`no such file or directory: ${p}`);
    if (statSync(p).isDirectory()) {
      for (const entry of readdirSync(p).sort()) {
        const full = join(p, entry);
        if (WORKER_FILE.test(entry) && !entry.endsWith('.d.ts') && statSync(full).isFile()) files.push(full);
      }
    } else {
      files.push(p);
    }
  }
  if (!files.length) throw new Error(`no worker files found in ${paths.join(', ')}`);
  return files;
}

export async function startDev(options: DevOptions): Promise<DevServer> {
  const { logger } = options;
  // The build command may be what makes the entry: it runs first (wrangler's order).
  if (options.build) await runBuildStep(options.build);
  const files = expandPaths(options.paths);
  const kvNames = options.kvNamespaces ?? [];
  const bindings = { ...kvBindings(kvNames), ...options.bindings };
  // Inspecting: isolates with inspector support, one per worker and kept while idle, so the
  // DevTools session stays on the isolate that serves the requests.
  const inspecting = options.inspect ? { inspector: true, maxIsolatesPerWorker: 1, idleTtlMs: 24 * 3600_000 } : {};
  const runtime = await Runtime.create({ logger, ...inspecting, ...options.runtime });
  // Developers call their own local APIs: private addresses are allowed in dev.
  const closeOps = installStandardOps(runtime, { allowPrivate: true });
  // The Cache API in dev: in memory, gone when dev stops (as wrangler dev without persistence).
  const cacheStore = new CacheStore({ path: ':memory:' });
  installCache(runtime, cacheStore);
  const router = new Router((name) => runtime.has(name));
  const sources = new Map<string, string>();
  const watchers: FSWatcher[] = [];
  // --kv names and wrangler kv_namespaces alike live in memory in dev (unless a service is given).
  const usesKV = Object.values(bindings).some((binding) => binding.type === 'kv_namespace');
  const kv = usesKV ? (options.kvService ?? new KVService({ backend: new MemoryBackend() })) : null;
  if (kv) installKV(runtime, kv);

  async function load(file: string): Promise<void> {
    const name = workerNameFromFile(file);
    const bundle = await bundleWorker(file, options.bundle);
    const def: WorkerDefinition = {
      name,
      version: contentHash(bundle.modules).slice(0, 16),
      main: bundle.main,
      modules: bundle.modules,
      bindings,
      compatibilityFlags: options.bundle?.compatibilityFlags?.length ? options.bundle.compatibilityFlags : undefined,
      compatibilityDate: options.compatibilityDate,
      // Inspected code runs slower (and DevTools evaluations count as CPU), and a request paused at
      // a breakpoint must not hit the 30 s wall limit: roomier defaults, unless limits are given.
      limits: options.inspect ? { cpuMs: 1000, wallMs: 3600_000, ...options.limits } : options.limits,
    };
    const current = runtime.definition(name);
    if (current?.version === def.version) return;
    runtime.deploy(def);
    if (current) logger.info({ worker: name, version: def.version }, `reloaded ${name}`);
    if (options.watch) {
      for (const input of bundle.inputs) {
        const path = resolve(input);
        if (path.includes('node_modules') || sources.has(path)) continue;
        sources.set(path, file);
        try {
          let timer: NodeJS.Timeout | null = null;
          watchers.push(
            watch(path, () => {
              if (timer) clearTimeout(timer);
              timer = setTimeout(() => reloadFile(file), 50);
            }),
          );
        } catch {
          // A file that vanished between bundling and watching: the next reload re-adds it.
        }
      }
    }
  }

  /** Run the build command again when its sources change, then reload every worker. */
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
        for (const file of files) await reloadFile(file);
      });
    };
    for (const dir of step.watchDirs) {
      if (!existsSync(dir)) continue;
      watchers.push(
        watch(dir, { recursive: true }, () => {
          if (timer) clearTimeout(timer);
          timer = setTimeout(rebuild, 100);
        }),
      );
    }
  }

  async function reloadFile(file: string): Promise<void> {
    try {
      await load(file);
    } catch (error) {
      // Keep serving the last good version; say what is wrong.
      logger.error({ file, err: (error as Error).message }, `reload of ${file} failed; still serving the previous version`);
    }
  }

  for (const file of files) await load(file);
  if (options.build && options.watch) watchBuild(options.build);
  router.defaultWorker = options.defaultWorker ?? workerNameFromFile(files[0]);

  const server = createIngress({ runtime, router, logger, serverTiming: options.serverTiming, exposeErrors: true });
  installDevEndpoints(server, { runtime, router, logger }); // /__scheduled
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
    kv,
    inspector,
    async reload(name: string) {
      const file = files.find((f) => workerNameFromFile(f) === name);
      if (!file) throw new Error(`no worker ${name}`);
      await load(file);
    },
    async close() {
      for (const w of watchers) w.close();
      await inspector?.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      runtime.close();
      await closeOps();
      cacheStore.close();
      // A service the caller passed in is the caller's to close.
      if (kv && !options.kvService) await kv.close();
    },
  };
}
