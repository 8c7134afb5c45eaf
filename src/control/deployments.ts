// What the control plane does, apart from HTTP: turn an upload into an immutable version, make a
// version live (upload, rollback, restore at start), change routes, delete. The order is always
// the same, so a failure anywhere loses nothing:
//   validate -> compile and run the top level in a throwaway isolate -> write the store
//   -> swap the runtime's definition (in-flight requests finish on the old isolate) -> route table.
// Mutations run one at a time, so the store, the runtime and the route table never disagree about
// which version is live, even when two uploads to one worker race.
//
// What is versioned: code, bindings, crons, limits, compatibility date; a rollback brings all of
// them back. What is not: routes, which belong to the worker (as on Cloudflare, where routes are
// triggers, not part of a version). An upload that names routes replaces the worker's routes; one
// that does not leaves them; a rollback leaves them; PUT /workers/:name/routes changes them alone.
// A version records the routes its upload named, for history.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { DEFAULT_LIMITS } from '../model/limits.js';
import type { Runtime } from '../runtime/runtime.js';
import { contentHash, type BindingConfig, type WorkerDefinition, type WorkerModuleSource } from '../model/worker-definition.js';
import type { Router } from '../data-plane/router.js';
import { RouteConflictError, type DeploymentStore, type RouteRecord, type StoredCodeCache, type VersionInfo, type WorkerInfo } from '../store/types.js';
import { badRequest, conflict, notFound, tooLarge } from './errors.js';
import type { UploadSpec } from './upload.js';
import { normalizeRoute, workerNameError } from './validate.js';
import { SnapshotBuilds } from './snapshot-builds.js';
import type { SnapshotBuildOptions } from '../runtime/deployment-snapshot.js';

/** A new version's cache, or one the store could not read: empty, filled by the first load. */
const emptyCodeCache = (): StoredCodeCache => ({ modules: new Map(), afterRun: false });

export interface DeploymentsOptions {
  runtime: Runtime;
  router: Router;
  store: DeploymentStore;
  logger: Logger;
  /** largest total module source accepted, in bytes (a worker's own limits may only lower it) */
  maxScriptBytes?: number;
  /** per-deployment snapshots: built after a version goes live and stored beside it (off unless
   *  given; `cinder serve` turns them on). The runtime must have them enabled too. */
  snapshots?: SnapshotBuildOptions | boolean;
}

export type DeploymentEvent =
  | { type: 'deployed'; worker: string; version: VersionInfo; reason: 'upload' | 'rollback' | 'restore' }
  | { type: 'deleted'; worker: string }
  | { type: 'routes'; worker: string; routes: string[] };

export interface WorkerState {
  info: WorkerInfo;
  version: VersionInfo;
  routes: string[];
}

export class Deployments {
  readonly runtime: Runtime;
  readonly router: Router;
  readonly store: DeploymentStore;
  readonly maxScriptBytes: number;
  private readonly logger: Logger;
  private readonly listeners: ((event: DeploymentEvent) => void)[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  /** per-deployment snapshot builds (null: off) */
  readonly snapshots: SnapshotBuilds | null;

  constructor(options: DeploymentsOptions) {
    this.runtime = options.runtime;
    this.router = options.router;
    this.store = options.store;
    this.logger = options.logger;
    const snapshots = options.snapshots ?? false;
    this.snapshots = snapshots === false ? null : new SnapshotBuilds(this.runtime, this.store, this.logger, snapshots === true ? {} : snapshots);
    this.maxScriptBytes = options.maxScriptBytes ?? DEFAULT_LIMITS.scriptBytes;
  }

  /** Hear of every change to what is live (cron scheduling, metrics, other nodes). */
  onChange(listener: (event: DeploymentEvent) => void): void {
    this.listeners.push(listener);
  }

  private emit(event: DeploymentEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error({ err: (error as Error).message, worker: event.worker }, 'deployment listener failed');
      }
    }
  }

  /** Run mutations one after another. */
  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task, task);
    this.tail = run.catch(() => {});
    return run;
  }

  // --- start-up ---------------------------------------------------------------------------------

  /** Load every worker's current version and every route from the store into the runtime. */
  restore(): Promise<{ workers: string[]; routes: number; failed: string[] }> {
    return this.serial(async () => {
      const workers: string[] = [];
      const failed: string[] = [];
      for (const info of await this.store.listWorkers()) {
        try {
          const version = await this.store.getVersion(info.name, info.currentVersion);
          if (!version) throw new Error(`current version ${info.currentVersion} is missing from the store`);
          const def = await this.definitionOf(version);
          await this.snapshots?.attachStored(version, def);
          this.runtime.deploy(def);
          this.snapshots?.schedule(version, def);
          workers.push(info.name);
          this.emit({ type: 'deployed', worker: info.name, version, reason: 'restore' });
        } catch (error) {
          failed.push(info.name);
          this.logger.error({ worker: info.name, err: (error as Error).message }, `could not restore worker ${info.name}`);
        }
      }
      const routes = await this.refreshRoutes();
      return { workers, routes: routes.length, failed };
    });
  }

  // --- mutations --------------------------------------------------------------------------------

  async upload(name: string, spec: UploadSpec): Promise<VersionInfo> {
    assertName(name);
    return this.serial(async () => {
      const current = await this.currentVersion(name);
      const bindings = { ...spec.bindings };
      if (current && spec.keepBindings.length) {
        for (const [binding, config] of Object.entries(current.bindings)) {
          if (!(binding in bindings) && spec.keepBindings.includes(config.type)) bindings[binding] = config;
        }
      }
      validateBindings(bindings);

      const size = spec.modules.reduce((sum, m) => sum + Buffer.byteLength(m.code), 0);
      const max = Math.min(this.maxScriptBytes, spec.limits.scriptBytes ?? Infinity);
      if (size > max) throw tooLarge(`the script is ${size} bytes, over the limit of ${max} bytes`, { size, limit: max });

      if (spec.routes) await this.assertRoutesFree(name, spec.routes);

      const version = {
        id: randomUUID(),
        worker: name,
        hash: contentHash(spec.modules),
        createdAt: Date.now(),
        size,
        main: spec.main,
        bindings,
        routes: spec.routes ?? null,
        crons: spec.crons,
        limits: spec.limits,
        compatibilityDate: spec.compatibilityDate,
      };
      const def = this.definition(version, spec.modules, emptyCodeCache());
      // Compile and run the top level now, in a throwaway isolate: a broken upload is refused here
      // and the version that serves now keeps serving. This also fills def.codeCache.
      const loadError = this.runtime.check(def);
      if (loadError) throw badRequest(`the script failed to load: ${loadError}`, { load_error: loadError });

      let stored: VersionInfo;
      try {
        stored = await this.store.publish({ ...version, modules: spec.modules }, spec.routes);
      } catch (error) {
        if (error instanceof RouteConflictError) throw routeConflict(error);
        throw error;
      }
      this.runtime.deploy(def);
      await this.refreshRoutes();
      this.saveCodeCache(stored.id, def);
      this.logger.info({ worker: name, version: stored.id, number: stored.number, size }, `deployed ${name} version ${stored.number}`);
      this.emit({ type: 'deployed', worker: name, version: stored, reason: 'upload' });
      // Made after the deploy answered (a build takes up to seconds), in a child process.
      this.snapshots?.schedule(stored, def);
      return stored;
    });
  }

  /** Make an earlier version live: `target` is a version id or number; default, the one before the current. */
  async rollback(name: string, target?: string | number): Promise<{ version: VersionInfo; previous: VersionInfo; changed: boolean }> {
    assertName(name);
    return this.serial(async () => {
      const info = await this.store.getWorker(name);
      if (!info) throw notFound(`no worker named "${name}"`);
      const versions = await this.store.listVersions(name);
      const previous = versions.find((v) => v.id === info.currentVersion)!;
      let version: VersionInfo | undefined;
      if (target === undefined || target === null || target === '') {
        version = versions.find((v) => v.number < previous.number);
        if (!version) throw conflict(`worker "${name}" has no version older than the current one (${previous.number}) to roll back to`);
      } else {
        const wanted = String(target);
        version = versions.find((v) => v.id === wanted || String(v.number) === wanted);
        if (!version) throw notFound(`worker "${name}" has no version "${wanted}" (see GET /workers/${name}/versions)`);
      }
      if (version.id === previous.id) return { version, previous, changed: false };
      const def = await this.definitionOf(version);
      await this.snapshots?.attachStored(version, def);
      await this.store.activate(name, version.id);
      this.runtime.deploy(def);
      this.snapshots?.schedule(version, def);
      this.logger.info({ worker: name, version: version.id, number: version.number, from: previous.number }, `rolled ${name} back to version ${version.number}`);
      this.emit({ type: 'deployed', worker: name, version, reason: 'rollback' });
      return { version, previous, changed: true };
    });
  }

  async remove(name: string): Promise<void> {
    assertName(name);
    return this.serial(async () => {
      if (!(await this.store.deleteWorker(name))) throw notFound(`no worker named "${name}"`);
      // Routes first, so no request is routed to a worker the runtime no longer has.
      await this.refreshRoutes();
      this.runtime.remove(name);
      this.logger.info({ worker: name }, `deleted ${name}`);
      this.emit({ type: 'deleted', worker: name });
    });
  }

  async setRoutes(name: string, patterns: unknown): Promise<string[]> {
    assertName(name);
    if (!Array.isArray(patterns)) throw badRequest('routes must be an array of patterns such as "example.com/api/*"');
    const routes = [
      ...new Set(
        patterns.map((item, i) => {
          const pattern = typeof item === 'object' && item !== null ? (item as { pattern?: unknown }).pattern : item;
          if (typeof pattern !== 'string') throw badRequest(`routes[${i}] must be a pattern string or {"pattern": "..."}`);
          const normalized = normalizeRoute(pattern);
          if (normalized.error) throw badRequest(`routes[${i}]: ${normalized.error}`);
          return normalized.pattern!;
        }),
      ),
    ];
    return this.serial(async () => {
      if (!(await this.store.getWorker(name))) throw notFound(`no worker named "${name}"`);
      try {
        await this.store.setRoutes(name, routes);
      } catch (error) {
        if (error instanceof RouteConflictError) throw routeConflict(error);
        throw error;
      }
      await this.refreshRoutes();
      this.emit({ type: 'routes', worker: name, routes });
      return routes;
    });
  }

  // --- reads --------------------------------------------------------------------------------------

  async listWorkers(): Promise<WorkerState[]> {
    const [workers, routes] = await Promise.all([this.store.listWorkers(), this.store.listRoutes()]);
    const states: WorkerState[] = [];
    for (const info of workers) {
      const version = await this.store.getVersion(info.name, info.currentVersion);
      if (version) states.push({ info, version, routes: routesOf(routes, info.name) });
    }
    return states;
  }

  async getWorker(name: string): Promise<WorkerState> {
    const info = await this.store.getWorker(name);
    if (!info) throw notFound(`no worker named "${name}"`);
    const version = await this.store.getVersion(name, info.currentVersion);
    if (!version) throw new Error(`worker ${name}: current version ${info.currentVersion} is missing from the store`);
    return { info, version, routes: routesOf(await this.store.listRoutes(), name) };
  }

  async listVersions(name: string): Promise<{ info: WorkerInfo; versions: VersionInfo[] }> {
    const info = await this.store.getWorker(name);
    if (!info) throw notFound(`no worker named "${name}"`);
    return { info, versions: await this.store.listVersions(name) };
  }

  async getVersion(name: string, id: string): Promise<{ info: WorkerInfo; version: VersionInfo }> {
    const { info, versions } = await this.listVersions(name);
    const version = versions.find((v) => v.id === id || String(v.number) === id);
    if (!version) throw notFound(`worker "${name}" has no version "${id}"`);
    return { info, version };
  }

  listRoutes(): Promise<RouteRecord[]> {
    return this.store.listRoutes();
  }

  // --- helpers ----------------------------------------------------------------------------------

  private async currentVersion(name: string): Promise<VersionInfo | null> {
    const info = await this.store.getWorker(name);
    return info ? this.store.getVersion(name, info.currentVersion) : null;
  }

  private async assertRoutesFree(name: string, patterns: string[]): Promise<void> {
    const owners = new Map((await this.store.listRoutes()).map((r) => [r.pattern, r.worker]));
    for (const pattern of patterns) {
      const owner = owners.get(pattern);
      if (owner && owner !== name) throw routeConflict(new RouteConflictError(pattern, owner));
    }
  }

  private async refreshRoutes(): Promise<RouteRecord[]> {
    const routes = await this.store.listRoutes();
    this.router.setRoutes(routes);
    return routes;
  }

  private definition(version: Omit<VersionInfo, 'number' | 'modules'>, modules: WorkerModuleSource[], codeCache: StoredCodeCache): WorkerDefinition {
    const def: WorkerDefinition = {
      name: version.worker,
      // The runtime swaps isolates when this changes: every upload and rollback target differs.
      version: version.id,
      main: version.main,
      modules,
      bindings: version.bindings,
      limits: Object.keys(version.limits).length ? version.limits : undefined,
      codeCache: codeCache.modules,
      // A cache stored after a first request is not made again by this process.
      codeCacheAfterRun: codeCache.afterRun,
      // The runtime replaces cache entries V8 refuses (damaged on disk, made under other V8 flags;
      // the store already keys them by V8 version), and makes them again once a first request has
      // compiled the functions it calls; storing the result means a restart starts from it.
      onCodeCacheUpdated: (_codeCache, reason) => {
        if (reason === 'rejected') this.logger.info({ worker: version.worker, version: version.id }, 'stored code cache was rejected by V8; storing a fresh one');
        this.saveCodeCache(version.id, def);
      },
    };
    return def;
  }

  private async definitionOf(version: VersionInfo): Promise<WorkerDefinition> {
    const [modules, codeCache] = await Promise.all([this.store.getModules(version.id), this.store.getCodeCache(version.id).catch(() => emptyCodeCache())]);
    return this.definition(version, modules, codeCache);
  }

  /** Keep the V8 code cache beside the version, so a restarted server compiles nothing. Best effort. */
  private saveCodeCache(versionId: string, def: WorkerDefinition): void {
    if (!def.codeCache?.size) return;
    this.store.putCodeCache(versionId, { modules: def.codeCache, afterRun: def.codeCacheAfterRun === true }).catch((error) => {
      this.logger.warn({ version: versionId, err: (error as Error).message }, 'could not store code cache');
    });
  }
}

function assertName(name: string): void {
  const error = workerNameError(name);
  if (error) throw badRequest(error);
}

function validateBindings(bindings: Record<string, BindingConfig>): void {
  for (const [name, binding] of Object.entries(bindings)) {
    if (binding.type === 'service') {
      const error = workerNameError(binding.service);
      if (error) throw badRequest(`binding ${name}: service "${binding.service}" cannot be a worker: ${error}`);
    }
  }
}

function routeConflict(error: RouteConflictError) {
  return conflict(`${error.message}; remove it from that worker first (PUT /workers/${error.owner}/routes) or pick another pattern`, {
    pattern: error.pattern,
    owner: error.owner,
  });
}

function routesOf(routes: RouteRecord[], worker: string): string[] {
  return routes.filter((r) => r.worker === worker).map((r) => r.pattern);
}
