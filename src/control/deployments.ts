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
import { contentHash, moduleSize, setBinding, type BindingConfig, type DurableObjectMigration, type WorkerDefinition, type WorkerModuleSource } from '../model/worker-definition.js';
import type { Router } from '../data-plane/router.js';
import { DEFAULT_ACCOUNT, RouteConflictError, WorkerOwnedError, type DeploymentStore, type RouteRecord, type StoredCodeCache, type VersionInfo, type WorkerInfo } from '../store/types.js';
import { accountNamespace } from '../model/accounts.js';
import { parsePattern, tenantHostError } from '../model/route-pattern.js';
import { validateNamespace } from '../../bindings/kv/validate.js';
import { ceilingBreach, clampToCeilings, resolveCeilings, type LimitCeilings } from './ceilings.js';
import { ControlError, badRequest, conflict, notFound, tooLarge } from './errors.js';
import type { UploadSpec } from './upload.js';
import { normalizeRoute, workerNameError } from './validate.js';
import { SnapshotBuilds } from './snapshot-builds.js';
import type { SnapshotBuildOptions } from '../runtime/deployment-snapshot.js';
import { DEFAULT_ASSETS_CONFIG, type WorkerAssets } from '../model/assets.js';
import type { AssetStore, AssetsCollected, ManifestRecord, VersionAssetsRecord } from '../store/assets.js';
import { AssetUploads, SESSION_TTL_MS, type AssetUploadOptions } from './assets.js';

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
  /** the operator's ceilings on per-worker limits (ceilings.ts); default DEFAULT_CEILINGS */
  ceilings?: Partial<LimitCeilings>;
  /** where static assets are kept (store/assets.ts); without it, uploads with assets are refused */
  assets?: AssetStore;
  assetLimits?: AssetUploadOptions;
  /** Durable Objects on this server (bindings/durable-objects): a deploy's migrations and bindings
   *  are checked against the worker's exported classes; absent, such deploys are refused */
  durableObjects?: DurableObjectDeploys;
}

/** What a deploy asks of Durable Objects: a plan (throws MigrationError naming the problem), then
 *  applying it once the version is stored. */
export interface DurableObjectDeploys {
  plan(deploy: { account: string; script: string; bindings: Record<string, BindingConfig>; migrations: DurableObjectMigration[]; exportedClasses: string[] }): Promise<unknown>;
  apply(plan: unknown): Promise<void>;
  /** before a worker deployed elsewhere is served here: its classes as the other node made them */
  prepare(account: string, script: string): Promise<void>;
}

/**
 * Who asks: undefined is the operator (every account; what it creates lands in the default
 * account), a string is the one account a scoped token may act on.
 */
export type Scope = string | undefined;

export type DeploymentEvent =
  | { type: 'deployed'; worker: string; version: VersionInfo; reason: 'upload' | 'rollback' | 'restore' | 'sync' }
  | { type: 'deleted'; worker: string; sync?: true }
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
  readonly ceilings: LimitCeilings;
  private readonly logger: Logger;
  private readonly listeners: ((event: DeploymentEvent) => void)[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  /** per-deployment snapshot builds (null: off) */
  readonly snapshots: SnapshotBuilds | null;
  /** static asset uploads (null: this server keeps no assets) */
  readonly assetUploads: AssetUploads | null;
  private readonly durableObjects: DurableObjectDeploys | null;

  constructor(options: DeploymentsOptions) {
    this.runtime = options.runtime;
    this.durableObjects = options.durableObjects ?? null;
    this.router = options.router;
    this.store = options.store;
    this.logger = options.logger;
    const snapshots = options.snapshots ?? false;
    this.snapshots = snapshots === false ? null : new SnapshotBuilds(this.runtime, this.store, this.logger, snapshots === true ? {} : snapshots);
    this.maxScriptBytes = options.maxScriptBytes ?? options.ceilings?.scriptBytes ?? DEFAULT_LIMITS.scriptBytes;
    this.ceilings = resolveCeilings({ ...options.ceilings, scriptBytes: this.maxScriptBytes });
    this.assetUploads = options.assets ? new AssetUploads(options.assets, options.assetLimits) : null;
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
          const def = await this.definitionOf(version, info.account);
          if (def.modules.length) await this.snapshots?.attachStored(version, def);
          await this.durableObjects?.prepare(info.account, info.name);
          this.runtime.deploy(def);
          if (def.modules.length) this.snapshots?.schedule(version, def);
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

  // --- other processes and nodes ---------------------------------------------------------------

  /**
   * Bring one worker in line with the store after another process or node changed it (a deploy,
   * rollback, delete or route change heard on the bus): load its current version if this runtime
   * serves another, forget it if it is gone, and refresh the route table. Emits 'deployed' (reason
   * 'sync') or 'deleted' as a local change would, so crons and metrics follow.
   */
  sync(name: string): Promise<'deployed' | 'deleted' | 'unchanged'> {
    return this.serial(async () => {
      const outcome = await this.syncOne(name);
      // A periodic reconcile may have loaded the version before its deploy had recorded its
      // Durable Object classes; the deploy's own announcement comes after, so look again.
      const info = outcome === 'unchanged' && this.durableObjects ? await this.store.getWorker(name) : null;
      if (info) await this.durableObjects?.prepare(info.account, name);
      await this.refreshRoutes();
      return outcome;
    });
  }

  /** sync() for every worker, the store's and this runtime's (after missed messages). */
  syncAll(): Promise<{ deployed: string[]; deleted: string[] }> {
    return this.serial(async () => {
      const stored = await this.store.listWorkers();
      const names = new Set([...stored.map((w) => w.name), ...this.runtime.workers()]);
      const deployed: string[] = [];
      const deleted: string[] = [];
      for (const name of names) {
        const outcome = await this.syncOne(name, stored.find((w) => w.name === name) ?? null);
        if (outcome === 'deployed') deployed.push(name);
        else if (outcome === 'deleted') deleted.push(name);
      }
      await this.refreshRoutes();
      return { deployed, deleted };
    });
  }

  private async syncOne(name: string, known?: WorkerInfo | null): Promise<'deployed' | 'deleted' | 'unchanged'> {
    const info = known !== undefined ? known : await this.store.getWorker(name);
    if (!info) {
      if (!this.runtime.has(name)) return 'unchanged';
      await this.refreshRoutes();
      this.runtime.remove(name);
      this.logger.info({ worker: name }, `${name} was deleted elsewhere; removed here`);
      this.emit({ type: 'deleted', worker: name, sync: true });
      return 'deleted';
    }
    if (this.runtime.definition(name)?.version === info.currentVersion) return 'unchanged';
    const version = await this.store.getVersion(name, info.currentVersion);
    if (!version) throw new Error(`worker ${name}: current version ${info.currentVersion} is missing from the store`);
    const def = await this.definitionOf(version, info.account);
    await this.snapshots?.attachStored(version, def);
    await this.durableObjects?.prepare(info.account, name);
    this.runtime.deploy(def);
    this.logger.info({ worker: name, version: version.id, number: version.number }, `${name} version ${version.number} deployed elsewhere; serving it here`);
    this.emit({ type: 'deployed', worker: name, version, reason: 'sync' });
    return 'deployed';
  }

  // --- mutations --------------------------------------------------------------------------------

  /** `scope`: the account of a scoped token (it may only touch its own workers), undefined for the operator. */
  async upload(name: string, spec: UploadSpec, scope?: Scope): Promise<VersionInfo> {
    assertName(name);
    return this.serial(() => this.publish(name, spec, scope));
  }

  /**
   * Set one secret (Cloudflare's PUT .../secrets): as there, a new version with the live one's
   * code and settings and the secret added or replaced, made live at once. Uploads that send
   * keep_bindings ["secret_text"] (as `cinder deploy` and wrangler do) carry it on.
   */
  async putSecret(name: string, secret: { name: string; text: string }, scope?: Scope): Promise<VersionInfo> {
    assertName(name);
    return this.serial(async () => {
      const current = await this.liveVersion(name, scope);
      const existing = current.bindings[secret.name];
      if (existing && existing.type !== 'secret_text') {
        throw conflict(`worker "${name}" already has a ${existing.type} binding named ${secret.name}; a secret cannot take its name (rename one of them)`, { binding: secret.name });
      }
      const bindings = { ...current.bindings };
      setBinding(bindings, secret.name, { type: 'secret_text', text: secret.text });
      return this.publish(name, await this.sameSettings(current, bindings), scope);
    });
  }

  /** Remove one secret: a new version without it, made live at once. */
  async deleteSecret(name: string, secretName: string, scope?: Scope): Promise<VersionInfo> {
    assertName(name);
    return this.serial(async () => {
      const current = await this.liveVersion(name, scope);
      if (current.bindings[secretName]?.type !== 'secret_text') throw notFound(`worker "${name}" has no secret named "${secretName}"`);
      const bindings = Object.fromEntries(Object.entries(current.bindings).filter(([binding]) => binding !== secretName));
      return this.publish(name, await this.sameSettings(current, bindings), scope);
    });
  }

  /** The names of a worker's secrets (never their values). */
  async listSecrets(name: string, scope?: Scope): Promise<{ name: string; type: 'secret_text' }[]> {
    const { version } = await this.getWorker(name, scope);
    return Object.entries(version.bindings)
      .filter(([, binding]) => binding.type === 'secret_text')
      .map(([secret]) => ({ name: secret, type: 'secret_text' as const }));
  }

  private async liveVersion(name: string, scope: Scope): Promise<VersionInfo> {
    const info = await this.store.getWorker(name);
    if (!info || (scope !== undefined && info.account !== scope)) throw notFound(`no worker named "${name}"; deploy it first (cinder deploy), then set its secrets`);
    const version = await this.store.getVersion(name, info.currentVersion);
    if (!version) throw new Error(`worker ${name}: current version ${info.currentVersion} is missing from the store`);
    return version;
  }

  /** An upload of `version`'s code and settings with other bindings; its routes are left alone. */
  private async sameSettings(version: VersionInfo, bindings: Record<string, BindingConfig>): Promise<UploadSpec> {
    return {
      main: version.main,
      modules: await this.store.getModules(version.id),
      bindings,
      keepBindings: [],
      // Migrations were applied when the version was uploaded; a secret change applies none.
      migrations: [],
      routes: undefined,
      crons: version.crons,
      limits: version.limits,
      compatibilityDate: version.compatibilityDate,
      compatibilityFlags: version.compatibilityFlags ?? [],
      // A secret changed keeps the queues the version consumes.
      ...(version.queueConsumers?.length ? { queueConsumers: version.queueConsumers } : {}),
      // the live version's static assets, as they are
      assets: this.assetUploads && (await this.assetUploads.store.versionAssets(version.id)) ? { keep: true } : undefined,
    };
  }

  /** Make a new version live; runs inside serial(). */
  private async publish(name: string, spec: UploadSpec, scope: Scope): Promise<VersionInfo> {
    const info = await this.store.getWorker(name);
    if (info && scope !== undefined && info.account !== scope) throw nameTaken(name);
    // The operator may replace any account's worker; it stays that account's.
    const account = info?.account ?? scope ?? DEFAULT_ACCOUNT;
    const current = info ? await this.store.getVersion(name, info.currentVersion) : null;
    const bindings = { ...spec.bindings };
    if (current && spec.keepBindings.length) {
      for (const [binding, config] of Object.entries(current.bindings)) {
        if (!Object.hasOwn(bindings, binding) && spec.keepBindings.includes(config.type)) setBinding(bindings, binding, config);
      }
    }
    await this.validateBindings(bindings, account);

    const breach = ceilingBreach(spec.limits, this.ceilings);
    if (breach) {
      throw badRequest(`limits.${breach.limit} is ${breach.value}, over this server's ceiling of ${breach.ceiling}; ask for at most ${breach.ceiling} (the operator sets ceilings)`, breach as unknown as Record<string, unknown>);
    }
    const size = spec.modules.reduce((sum, m) => sum + moduleSize(m), 0);
    const max = Math.min(this.maxScriptBytes, spec.limits.scriptBytes ?? Infinity);
    if (size > max) throw tooLarge(`the script is ${size} bytes, over the limit of ${max} bytes`, { size, limit: max });

    if (spec.routes && scope !== undefined) assertTenantRoutes(spec.routes, 'metadata.routes');

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
      compatibilityFlags: spec.compatibilityFlags,
      ...(spec.queueConsumers?.length ? { queueConsumers: spec.queueConsumers } : {}),
    };
    const def = this.definition(version, spec.modules, emptyCodeCache(), account);
    const assets = spec.assets ? await this.versionAssetsFor(name, spec.assets, current, account) : null;
    if (assets) def.assets = this.workerAssets(assets.record, assets.manifest);
    // Compile and run the top level now, in a throwaway isolate: a broken upload is refused here
    // and the version that serves now keeps serving. This also fills def.codeCache.
    let objectPlan: unknown = null;
    if (def.modules.length) {
      const { error: loadError, exportedClasses } = await this.runtime.inspect(def);
      if (loadError) throw badRequest(`the script failed to load: ${loadError}`, { load_error: loadError });
      objectPlan = await this.planDurableObjects(name, account, bindings, spec.migrations ?? [], exportedClasses);
    } else if (!def.assets) throw badRequest('the upload has no code and no assets');
    else objectPlan = await this.planDurableObjects(name, account, bindings, spec.migrations ?? [], []);
    // The version's link to its manifest is durable before the version is.
    if (assets) await this.assetUploads!.store.linkVersion(version.id, assets.record);

    let stored: VersionInfo;
    try {
      stored = await this.store.publish({ ...version, modules: spec.modules }, spec.routes, account);
    } catch (error) {
      if (error instanceof RouteConflictError) throw routeConflict(error);
      if (error instanceof WorkerOwnedError) throw nameTaken(name);
      throw error;
    }
    if (objectPlan !== null) await this.durableObjects!.apply(objectPlan);
    this.runtime.deploy(def);
    await this.refreshRoutes();
    this.saveCodeCache(stored.id, def);
    this.logger.info({ worker: name, version: stored.id, number: stored.number, size }, `deployed ${name} version ${stored.number}`);
    this.emit({ type: 'deployed', worker: name, version: stored, reason: 'upload' });
    // Made after the deploy answered (a build takes up to seconds), in a child process.
    if (def.modules.length) this.snapshots?.schedule(stored, def);
    return stored;
  }

  /** Make an earlier version live: `target` is a version id or number; default, the one before the current. */
  async rollback(name: string, target?: string | number, scope?: Scope): Promise<{ version: VersionInfo; previous: VersionInfo; changed: boolean }> {
    assertName(name);
    return this.serial(async () => {
      const info = await this.store.getWorker(name);
      if (!info || (scope !== undefined && info.account !== scope)) throw notFound(`no worker named "${name}"`);
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
      const def = await this.definitionOf(version, info.account);
      if (def.modules.length) await this.snapshots?.attachStored(version, def);
      await this.store.activate(name, version.id);
      this.runtime.deploy(def);
      if (def.modules.length) this.snapshots?.schedule(version, def);
      this.logger.info({ worker: name, version: version.id, number: version.number, from: previous.number }, `rolled ${name} back to version ${version.number}`);
      this.emit({ type: 'deployed', worker: name, version, reason: 'rollback' });
      return { version, previous, changed: true };
    });
  }

  async remove(name: string, scope?: Scope): Promise<void> {
    assertName(name);
    return this.serial(async () => {
      const info = await this.store.getWorker(name);
      if (!info || (scope !== undefined && info.account !== scope) || !(await this.store.deleteWorker(name))) throw notFound(`no worker named "${name}"`);
      // Routes first, so no request is routed to a worker the runtime no longer has.
      await this.refreshRoutes();
      this.runtime.remove(name);
      this.logger.info({ worker: name }, `deleted ${name}`);
      this.emit({ type: 'deleted', worker: name });
      // Queued behind this delete (not awaited: it runs when this turn ends).
      if (this.assetUploads) void this.collectAssets().catch((error) => this.logger.warn({ err: error }, 'collecting static assets failed'));
    });
  }

  /**
   * Delete the static assets no version of any worker serves any more (store/assets.ts collect),
   * keeping anything younger than an upload session can live. Run after a worker is deleted and
   * when the server starts.
   */
  collectAssets(graceMs = SESSION_TTL_MS): Promise<AssetsCollected | null> {
    // In turn with deploys: one between its upload's end and its version's link must not see its
    // files collected.
    return this.serial(() => this.collecting(graceMs));
  }

  private async collecting(graceMs: number): Promise<AssetsCollected | null> {
    const assets = this.assetUploads?.store;
    if (!assets) return null;
    const live = new Set<string>();
    for (const worker of await this.store.listWorkers()) for (const version of await this.store.listVersions(worker.name)) live.add(version.id);
    const collected = await assets.collect(live, graceMs);
    if (collected.versions + collected.manifests + collected.blobs > 0) {
      this.logger.info({ ...collected }, `collected static assets no version serves: ${collected.blobs} files (${collected.bytes} bytes), ${collected.manifests} manifests`);
    }
    return collected;
  }

  async setRoutes(name: string, patterns: unknown, scope?: Scope): Promise<string[]> {
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
    if (scope !== undefined) assertTenantRoutes(routes, 'routes');
    return this.serial(async () => {
      const info = await this.store.getWorker(name);
      if (!info || (scope !== undefined && info.account !== scope)) throw notFound(`no worker named "${name}"`);
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

  async listWorkers(scope?: Scope): Promise<WorkerState[]> {
    const [workers, routes] = await Promise.all([this.store.listWorkers(), this.store.listRoutes()]);
    const states: WorkerState[] = [];
    for (const info of workers) {
      if (scope !== undefined && info.account !== scope) continue;
      const version = await this.store.getVersion(info.name, info.currentVersion);
      if (version) states.push({ info, version, routes: routesOf(routes, info.name) });
    }
    return states;
  }

  async getWorker(name: string, scope?: Scope): Promise<WorkerState> {
    const info = await this.store.getWorker(name);
    if (!info || (scope !== undefined && info.account !== scope)) throw notFound(`no worker named "${name}"`);
    const version = await this.store.getVersion(name, info.currentVersion);
    if (!version) throw new Error(`worker ${name}: current version ${info.currentVersion} is missing from the store`);
    return { info, version, routes: routesOf(await this.store.listRoutes(), name) };
  }

  async listVersions(name: string, scope?: Scope): Promise<{ info: WorkerInfo; versions: VersionInfo[] }> {
    const info = await this.store.getWorker(name);
    if (!info || (scope !== undefined && info.account !== scope)) throw notFound(`no worker named "${name}"`);
    return { info, versions: await this.store.listVersions(name) };
  }

  async getVersion(name: string, id: string, scope?: Scope): Promise<{ info: WorkerInfo; version: VersionInfo }> {
    const { info, versions } = await this.listVersions(name, scope);
    const version = versions.find((v) => v.id === id || String(v.number) === id);
    if (!version) throw notFound(`worker "${name}" has no version "${id}"`);
    return { info, version };
  }

  /** The route table, or one account's part of it; `{pattern, worker}` as the API shows it. */
  async listRoutes(scope?: Scope): Promise<RouteRecord[]> {
    const routes = await this.store.listRoutes();
    return routes.filter((r) => scope === undefined || r.account === scope).map(({ pattern, worker }) => ({ pattern, worker }));
  }

  /** The account that owns a worker, or null when there is no such worker. */
  async ownerOf(name: string): Promise<string | null> {
    return (await this.store.getWorker(name))?.account ?? null;
  }

  // --- helpers ----------------------------------------------------------------------------------

  /**
   * Bindings resolve only to the account's own resources: a service binding may not name another
   * account's worker (worker names are global), and a KV namespace id is the account's own name
   * (model/accounts.ts), which must still fit storage once scoped.
   */
  private async validateBindings(bindings: Record<string, BindingConfig>, account: string): Promise<void> {
    for (const [name, binding] of Object.entries(bindings)) {
      if (binding.type === 'service') {
        const error = workerNameError(binding.service);
        if (error) throw badRequest(`binding ${name}: service "${binding.service}" cannot be a worker: ${error}`);
        const owner = await this.ownerOf(binding.service);
        if (owner !== null && owner !== account) throw badRequest(`binding ${name}: no worker named "${binding.service}" in this account; a service binding reaches only the account's own workers`, { binding: name });
      } else if (binding.type === 'kv_namespace') {
        try {
          validateNamespace(accountNamespace(account, binding.namespace_id));
        } catch {
          throw badRequest(`binding ${name}: the KV namespace id "${binding.namespace_id.slice(0, 64)}" is too long for this account (at most ${256 - accountNamespace(account, '').length} characters)`);
        }
      }
    }
  }

  /** The Durable Object changes an upload makes, checked (null: this server has none and the
   *  upload asks for none). */
  private async planDurableObjects(script: string, account: string, bindings: Record<string, BindingConfig>, migrations: DurableObjectMigration[], exportedClasses: string[]): Promise<unknown> {
    const wanted = migrations.length > 0 || Object.values(bindings).some((b) => b.type === 'durable_object_namespace');
    if (!this.durableObjects) {
      if (wanted) throw badRequest('Durable Objects are not enabled on this server');
      return null;
    }
    try {
      return await this.durableObjects.plan({ account, script, bindings, migrations, exportedClasses });
    } catch (error) {
      throw badRequest(`Durable Objects: ${(error as Error).message}`);
    }
  }

  private async refreshRoutes(): Promise<RouteRecord[]> {
    const routes = await this.store.listRoutes();
    this.router.setRoutes(routes);
    return routes;
  }

  private definition(version: Omit<VersionInfo, 'number' | 'modules'>, modules: WorkerModuleSource[], codeCache: StoredCodeCache, account: string): WorkerDefinition {
    const { limits, clamped } = clampToCeilings(version.limits, this.ceilings);
    if (clamped.length) this.logger.warn({ worker: version.worker, version: version.id, clamped }, `worker ${version.worker} runs with ${clamped.join(', ')} cut to the operator's ceiling`);
    const def: WorkerDefinition = {
      name: version.worker,
      account,
      // The runtime swaps isolates when this changes: every upload and rollback target differs.
      version: version.id,
      main: version.main,
      modules,
      bindings: resolveBindings(version.bindings, account),
      limits: Object.keys(limits).length ? limits : undefined,
      compatibilityDate: version.compatibilityDate ?? undefined,
      compatibilityFlags: version.compatibilityFlags?.length ? version.compatibilityFlags : undefined,
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

  private async definitionOf(version: VersionInfo, account: string): Promise<WorkerDefinition> {
    const [modules, codeCache] = await Promise.all([this.store.getModules(version.id), this.store.getCodeCache(version.id).catch(() => emptyCodeCache())]);
    const def = this.definition(version, modules, codeCache, account);
    const store = this.assetUploads?.store;
    const record = store ? await store.versionAssets(version.id) : null;
    if (record) def.assets = this.workerAssets(record, await store!.getManifest(record.account, record.manifest));
    return def;
  }

  /** The assets a new version serves: a finished upload session's manifest, or the live version's. */
  private async versionAssetsFor(name: string, spec: NonNullable<UploadSpec['assets']>, current: VersionInfo | null, account: string) {
    if (!this.assetUploads) throw badRequest('this server keeps no static assets');
    if (spec.session) {
      const { manifestHash, manifest } = await this.assetUploads.complete(spec.session, name, account);
      return { record: { account, manifest: manifestHash, config: spec.config ?? { ...DEFAULT_ASSETS_CONFIG } } satisfies VersionAssetsRecord, manifest };
    }
    const live = current ? await this.assetUploads.store.versionAssets(current.id) : null;
    if (!live) throw badRequest(`metadata.assets.keep: the live version of "${name}" has no assets to keep`);
    return { record: { ...live, config: spec.config ?? live.config }, manifest: await this.assetUploads.store.getManifest(live.account, live.manifest) };
  }

  private workerAssets(record: VersionAssetsRecord, manifest: ManifestRecord): WorkerAssets {
    return { config: record.config, manifest: new Map(Object.entries(manifest)), blobs: this.assetUploads!.store.blobSource(record.account), manifestHash: record.manifest };
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

/**
 * Bindings as the runtime sees them: KV namespace ids turned into the account's storage ids, and
 * service bindings marked with the account, so a call reaches a worker of this account only
 * (bindings/service/host.ts) even if the name is deleted and taken by another account later;
 * D1 and R2 bindings likewise, so a database id or bucket name reaches only this account's own.
 */
function resolveBindings(bindings: Record<string, BindingConfig>, account: string): Record<string, BindingConfig> {
  const out: Record<string, BindingConfig> = {};
  for (const [name, binding] of Object.entries(bindings)) {
    if (binding.type === 'kv_namespace') out[name] = { ...binding, namespace_id: accountNamespace(account, binding.namespace_id) };
    else if (binding.type === 'service' || binding.type === 'd1' || binding.type === 'r2_bucket' || binding.type === 'queue') out[name] = { ...binding, account };
    else out[name] = binding;
  }
  return out;
}

/** A scoped token's routes: a wildcard only at the front of the host, and never every host (route-pattern.ts). */
function assertTenantRoutes(patterns: string[], where: string): void {
  for (const [i, pattern] of patterns.entries()) {
    const host = parsePattern(pattern).parts?.host;
    const error = host ? tenantHostError(host) : null;
    if (error) throw new ControlError(403, `${where}[${i}]: ${error}`, { pattern });
  }
}

function nameTaken(name: string) {
  return conflict(`the worker name "${name}" belongs to another account; pick another name`, { worker: name });
}

function routeConflict(error: RouteConflictError) {
  if (error.owner === null) {
    return conflict(`${error.message}; a host belongs to one account: pick another pattern, or ask the operator`, { pattern: error.pattern, conflict: error.claim });
  }
  return conflict(`${error.message}; remove it from that worker first (PUT /workers/${error.owner}/routes) or pick another pattern`, {
    pattern: error.pattern,
    owner: error.owner,
  });
}

function routesOf(routes: RouteRecord[], worker: string): string[] {
  return routes.filter((r) => r.worker === worker).map((r) => r.pattern);
}
