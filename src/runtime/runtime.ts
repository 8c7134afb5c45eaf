// The runtime: knows every deployed worker's definition, keeps live instances (one isolate per
// loaded worker), brings one up on a cold start from the ready pool, and routes invocations to
// it. Everything above (HTTP ingress, cron, service bindings, the control plane) calls this.
import type { Logger } from 'pino';
import { IsolatePool, type PoolOptions, type PoolStats } from './pool.js';
import { IsolateReaper } from './isolate-reaper.js';
import { loadIsolateSource, type IsolateSource, type IsolateSourceOptions } from './isolate-source.js';
import { resolveLimits, LimitExceededError } from '../model/limits.js';
import { Watchdog } from './watchdog.js';
import { WorkerInstance, type InstanceHost } from './worker-instance.js';
import { WorkerLoadError } from './worker-loader.js';
import type { InvocationRecord } from './invocation.js';
import type { OpHandler, RuntimeRequest, RuntimeResponse, RuntimeRpcResult, SyncOpHandler } from './contract.js';
import { ObjectHost, type ObjectHostOptions } from './durable-objects/object-host.js';
import type { QueueDispatchResult, WireQueueMessage, WireResponse } from '../../protocol/wall.js';
import { newRequestId } from '../model/request-id.js';
import type { WorkerDefinition } from '../model/worker-definition.js';
import { WorkerSlot } from './worker-slot.js';
import type { InvocationPlace } from '../model/request-tree.js';
import { LRUCache } from 'lru-cache';
import { readFileSync } from 'node:fs';
import { DeploymentSnapshotIsolates, type DeploymentSnapshotIsolatesOptions } from './deployment-snapshot.js';
import type { LogLevel } from '../../protocol/wall.js';
import type { AddonCatalog } from './addons.js';
import { LogRate, type LogRateLimit } from './log-budget.js';
import { lowerThreadpoolPriority } from './thread-priority.js';
import { BackgroundClass, backgroundClassOptionsFromEnv, type BackgroundClassOptions } from './background-class.js';
import { ServingShare, ShareOverflowError, type ShareAccount, servingShareOptionsFromEnv, type ServingShareOptions } from './serving-share.js';

export interface RuntimeOptions {
  logger: Logger;
  pool?: Partial<PoolOptions>;
  isolateSource?: IsolateSource | IsolateSourceOptions;
  /** V8 code cache for worker modules (on by default; off for ablation) */
  workerCodeCache?: boolean;
  /** scale to zero: a worker's isolates are disposed after this long without a request */
  idleTtlMs?: number;
  /** console characters a second each worker may write to the host log (log-budget.ts) */
  consoleRate?: LogRateLimit;
  /** cap on workers with live isolates in this process; the least recently used go first */
  maxLiveWorkers?: number;
  /** cap on isolates one worker may spread over when they are saturated */
  maxIsolatesPerWorker?: number;
  /** isolates with V8 inspector support, made on demand (no pool): `cinder dev --inspect` only */
  inspector?: boolean;
  /** isolates from per-deployment snapshots (a definition's `snapshot`); false: never used */
  deploymentSnapshots?: DeploymentSnapshotIsolatesOptions | false;
  /** the add-ons workers may need (protocol/addons.ts); the built ones by default */
  addons?: AddonCatalog;
  /** each worker's share of the serving thread (serving-share.ts); from CINDER_SERVING_SHARE* by default */
  servingShare?: ServingShareOptions;
  /** which workers run in the background class of isolate threads; from CINDER_BACKGROUND_* by default */
  backgroundClass?: BackgroundClassOptions;
}

/** What bringing up (or finding) a worker's instance gave: the instance, or the load error; and
 *  how long the cold start took, when there was one. */
type StartResult = { instance?: WorkerInstance; loadError?: string; overLimit?: boolean; coldMs: number | null };

export const DEFAULT_IDLE_TTL_MS = 5 * 60_000;

/**
 * How many workers may hold live isolates by default. Each isolate takes ~14 memory mappings and
 * V8 aborts the whole process when Linux's vm.max_map_count (65,530 by default) runs out (measured
 * by bench/density.mjs: ~4,590 isolates at most; 4,000 held), so the cap follows that setting,
 * with headroom for the rest of the process.
 */
export function defaultMaxLiveWorkers(): number {
  try {
    const maps = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8').trim());
    if (Number.isFinite(maps) && maps > 0) return Math.max(100, Math.floor((maps * 0.8) / 16));
  } catch {
    // not Linux, or /proc unavailable: fall back to a conservative cap
  }
  return 2_500;
}

export class Runtime {
  readonly logger: Logger;
  readonly pool: IsolatePool;
  readonly source: IsolateSource;
  readonly ops = new Map<string, OpHandler>();
  readonly syncOps = new Map<string, SyncOpHandler>();
  private readonly definitions = new Map<string, WorkerDefinition>();
  /** live workers: their isolates, by worker name; idle ones expire, the least used are evicted */
  private readonly slots: LRUCache<string, WorkerSlot>;
  private readonly maxIsolatesPerWorker: number;
  readonly evictions = { idle: 0, capacity: 0, redeploy: 0, limit: 0 };
  private readonly watchdog = new Watchdog();
  private readonly host: InstanceHost;
  private readonly invocationListeners: ((record: InvocationRecord) => void)[] = [];
  private readonly consoleListeners: ((worker: string, requestId: string, level: LogLevel, message: string) => void)[] = [];
  private readonly workerCodeCache: boolean;
  coldStarts = 0;
  /** frees retired isolates between requests */
  private readonly reaper: IsolateReaper;
  /** fetches between their start and their response (the pool refills when this is 0) */
  private activeRequests = 0;
  /** cold starts per worker name (metrics) */
  readonly coldStartsByWorker = new Map<string, number>();
  /** per-worker loggers for console lines, when a worker's log level differs from the host's */
  private readonly consoleLoggers = new Map<string, Logger>();
  /** each worker's console rate, across its isolates (dropped with the worker) */
  private readonly consoleRates = new Map<string, LogRate>();
  /** workers idle past their time whose isolates hold open WebSockets (see the cache's dispose) */
  private readonly keptForSockets = new Map<string, WorkerSlot>();
  /** why evict() is removing a slot, while it does */
  private evicting: string | null = null;
  /** isolates from per-deployment snapshots (null: not used) */
  readonly snapshots: DeploymentSnapshotIsolates | null;
  /** what each worker makes the serving thread do; defers the entries of one over its share */
  readonly share: ServingShare;
  /** which workers' isolates run in the background class of isolate threads (a CPU breach) */
  readonly background: BackgroundClass;

  private constructor(options: RuntimeOptions, source: IsolateSource) {
    this.logger = options.logger;
    this.source = source;
    this.share = new ServingShare(options.servingShare ?? servingShareOptionsFromEnv());
    this.background = new BackgroundClass(options.backgroundClass ?? backgroundClassOptionsFromEnv());
    void lowerThreadpoolPriority();
    const isBusy = () => this.activeRequests > 0;
    // Snapshots are built on top of the base snapshot's sandbox; no inspector support in them.
    this.snapshots = options.deploymentSnapshots === false || options.inspector ? null : new DeploymentSnapshotIsolates(source.manifest, this.logger, { isBusy, ...options.deploymentSnapshots });
    this.workerCodeCache = options.workerCodeCache !== false;
    const poolOptions = { ...options.pool, isBusy };
    this.reaper = new IsolateReaper({ isBusy });
    this.pool = new IsolatePool(source, options.inspector ? { ...poolOptions, enabled: false, inspector: true } : poolOptions);
    this.maxIsolatesPerWorker = options.maxIsolatesPerWorker ?? 4;
    this.slots = new LRUCache<string, WorkerSlot>({
      max: options.maxLiveWorkers ?? defaultMaxLiveWorkers(),
      ttl: options.idleTtlMs ?? DEFAULT_IDLE_TTL_MS,
      ttlAutopurge: true,
      updateAgeOnGet: true,
      dispose: (slot, name, reason) => {
        // An idle worker whose isolates still hold open WebSockets is kept (out of the cache, so it
        // counts for nothing there) until its last socket closes or a request brings it back.
        if (reason === 'expire' && slot.openSockets() > 0) {
          this.keptForSockets.set(name, slot);
          return;
        }
        if (reason === 'expire') this.evictions.idle += slot.liveCount;
        else if (reason === 'evict') this.evictions.capacity += slot.liveCount;
        slot.retire(reason === 'expire' ? 'idle' : reason === 'delete' ? (this.evicting ?? reason) : reason);
      },
    });
    this.host = {
      logger: this.logger,
      watchdog: this.watchdog,
      ops: this.ops,
      syncOps: this.syncOps,
      onInvocationBegin: () => {
        this.openInvocations++;
      },
      onInvocationEnd: (record) => {
        this.openInvocations--;
        for (const listener of this.invocationListeners) listener(record);
      },
      consoleLogger: (worker) => this.consoleLoggers.get(worker) ?? this.logger,
      consoleRate: (worker) => {
        let rate = this.consoleRates.get(worker);
        if (!rate) this.consoleRates.set(worker, (rate = new LogRate(options.consoleRate)));
        return rate;
      },
      reaper: this.reaper,
      addons: options.addons,
      share: this.share,
      background: this.background,
      eventStarted: (worker) => {
        const token = this.started(worker);
        return { done: () => this.finished(worker, token) };
      },
      socketsClosed: (instance) => {
        const slot = this.keptForSockets.get(instance.def.name);
        if (!slot || !slot.instances.includes(instance) || slot.openSockets() > 0) return;
        this.keptForSockets.delete(instance.def.name);
        this.evictions.idle += slot.liveCount;
        slot.retire('idle');
      },
      onConsole: (worker, requestId, level, message) => {
        for (const listener of this.consoleListeners) listener(worker, requestId, level, message);
      },
    };
  }

  static async create(options: RuntimeOptions): Promise<Runtime> {
    const given = options.isolateSource;
    const source = given && 'kind' in given ? given : await loadIsolateSource({ ...(given ?? {}), logger: options.logger });
    if (source.kind === 'code-cache') options.logger.info('isolates start from code cache (no snapshot)');
    const runtime = new Runtime(options, source);
    await runtime.pool.fill();
    return runtime;
  }

  onInvocation(listener: (record: InvocationRecord) => void): void {
    this.invocationListeners.push(listener);
  }

  onConsole(listener: (worker: string, requestId: string, level: LogLevel, message: string) => void): void {
    this.consoleListeners.push(listener);
  }

  /** Level for one worker's console lines in the host log (pino level name, "silent" drops them
   *  all; null: the host's level). Live tails still see every line. */
  setLogLevel(name: string, level: string | null): void {
    if (level === null) this.consoleLoggers.delete(name);
    else this.consoleLoggers.set(name, this.logger.child({}, { level }));
  }

  logLevel(name: string): string {
    return (this.consoleLoggers.get(name) ?? this.logger).level;
  }

  registerOp(op: string, handler: OpHandler): void {
    this.ops.set(op, handler);
  }

  registerSyncOp(op: string, handler: SyncOpHandler): void {
    this.syncOps.set(op, handler);
  }

  private objectHost: ObjectHost | null = null;

  /** Durable Objects live now (each an isolate of its own; a hibernated object is not live). */
  liveObjects(): number {
    return this.objectHost?.liveCount ?? 0;
  }

  /** Durable Object instances of this process (made on first use; see durable-objects/object-host.ts). */
  objects(options?: ObjectHostOptions): ObjectHost {
    this.objectHost ??= new ObjectHost(
      {
        definition: (name) => this.definitions.get(name),
        startInstance: (def) => this.startDetached(def),
        track: (name) => {
          const token = this.started(name);
          return { done: () => this.finished(name, token) };
        },
        refusal: (name) => this.refusals.get(name),
        shareTurn: (name, maxWaitMs) => {
          const share = this.shareOf(name);
          // (refused: nothing was admitted, so nothing to finish)
          const turn = this.waitForShare(share, 1, maxWaitMs);
          let finished = false;
          return {
            turn: turn && turn.then((refused) => ((finished = refused !== undefined), refused)),
            finish: () => {
              if (!finished) this.share.finished(share);
              finished = true;
            },
          };
        },
        logger: this.logger,
      },
      options,
    );
    return this.objectHost;
  }

  /**
   * A live instance of `def` outside the worker's slots, for one Durable Object: its own isolate
   * from the pool, loaded like any cold start. Throws WorkerLoadError. The caller retires it.
   */
  private async startDetached(def: WorkerDefinition): Promise<WorkerInstance> {
    this.coldStarts++;
    const ready = await this.pool.take(resolveLimits(def.limits).memoryMb, { background: this.background.has(def.name) });
    const instance = new WorkerInstance(def, ready, this.host);
    ready.whenDisposed((reason) => {
      if (reason === 'cpu' || reason === 'memory') this.evictions.limit++;
    });
    try {
      await instance.load();
    } catch (error) {
      ready.dispose('load failed', this.reaper);
      throw error;
    }
    return instance;
  }

  // --- deployments -----------------------------------------------------------------------------

  /** Make `def` the live version of its worker. Requests in flight finish on the old isolate;
   *  the next request gets the new version. */
  deploy(def: WorkerDefinition): void {
    resolveLimits(def.limits); // validate now, not at the first request
    if (this.workerCodeCache && !def.codeCache) def.codeCache = new Map();
    const previous = this.definitions.get(def.name);
    this.definitions.set(def.name, def);
    if (previous && previous !== def) this.snapshots?.forget(previous, this.reaper);
    if (previous && previous.version !== def.version) {
      this.evict(def.name, 'redeployed');
      this.objectHost?.retireWorker(def.name);
    }
  }

  /** A snapshot of a deployed version was made (or loaded) after it was deployed: cold starts of
   *  that version use it from now on. False when that version is no longer the deployed one. */
  attachSnapshot(name: string, version: string, snapshot: WorkerDefinition['snapshot']): boolean {
    const def = this.definitions.get(name);
    if (!def || def.version !== version) return false;
    if (def.snapshot) this.snapshots?.forget(def, this.reaper);
    def.snapshot = snapshot;
    return true;
  }

  remove(name: string): boolean {
    const previous = this.definitions.get(name);
    if (previous) this.snapshots?.forget(previous, this.reaper);
    const existed = this.definitions.delete(name);
    this.consoleRates.delete(name);
    this.share.forget(name);
    this.background.forget(name);
    this.evict(name, 'deleted');
    this.objectHost?.retireWorker(name);
    return existed;
  }

  has(name: string): boolean {
    return this.definitions.has(name);
  }

  definition(name: string): WorkerDefinition | undefined {
    return this.definitions.get(name);
  }

  workers(): string[] {
    return [...this.definitions.keys()];
  }

  /** Dispose a worker's live isolate (when idle); the next request cold-starts it. */
  evict(name: string, reason = 'evicted'): void {
    const kept = this.keptForSockets.get(name);
    if (kept) {
      this.keptForSockets.delete(name);
      if (reason === 'redeployed') this.evictions.redeploy += kept.liveCount;
      kept.retire(reason);
    }
    const slot = this.slots.peek(name);
    if (!slot) return;
    if (reason === 'redeployed') this.evictions.redeploy += slot.liveCount;
    // dispose() retires its isolates once their requests are done, saying why (sockets are closed
    // with a code that tells their clients)
    this.evicting = reason;
    try {
      this.slots.delete(name);
    } finally {
      this.evicting = null;
    }
  }

  isLive(name: string): boolean {
    return (this.slots.peek(name)?.liveCount ?? 0) > 0;
  }

  /** Live isolates of one worker (more than one when it scaled up). */
  isolatesOf(name: string): number {
    return this.slots.peek(name)?.liveCount ?? 0;
  }

  /** The live instances of a worker (the dev inspector attaches to them). */
  instancesOf(name: string): WorkerInstance[] {
    return this.slots.peek(name)?.instances.filter((instance) => instance.alive) ?? [];
  }

  liveIsolates(): number {
    let n = 0;
    for (const slot of this.slots.values()) n += slot.liveCount;
    for (const slot of this.keptForSockets.values()) n += slot.liveCount;
    return n;
  }

  /** Isolates retired (evicted, redeployed) whose memory is not freed yet: the reaper frees
   *  them between requests. */
  isolatesAwaitingDispose(): number {
    return this.reaper.waiting;
  }

  poolStats(): PoolStats {
    return this.pool.stats();
  }

  /**
   * Bring the worker's isolate up now if it is not live, so that a request whose body is still
   * arriving finds it ready (ingress calls this as soon as it knows the Host). Resolves to the
   * cold start's duration, or null when there was none (or it failed: the request that follows
   * reports the load error).
   */
  async prewarm(name: string): Promise<number | null> {
    if (!this.definitions.has(name) || this.isLive(name)) return null;
    try {
      return (await this.instanceFor(name)).coldMs;
    } catch {
      return null;
    }
  }

  /** A worker kept for its WebSockets is asked for again: back into the cache. */
  private restoreKept(name: string): void {
    const kept = this.keptForSockets.get(name);
    if (!kept) return;
    this.keptForSockets.delete(name);
    this.slots.set(name, kept);
  }

  /** The warm case of instanceFor, without a promise: a live instance that may take the request
   *  (null when instanceFor has more to decide). */
  private liveInstance(name: string): StartResult | null {
    const def = this.definitions.get(name);
    if (!def) return null;
    if (this.keptForSockets.size) this.restoreKept(name);
    const slot = this.slots.get(name);
    if (!slot || slot.def.version !== def.version || slot.loadError) return null;
    const current = slot.pick();
    if (current && (slot.starting || !(slot.saturated() && slot.liveCount < this.maxIsolatesPerWorker))) return { instance: current, coldMs: null };
    return null;
  }

  /** The instance to serve a request: a live one, or a new one (a cold start) when the worker
   *  has none or all of its isolates are saturated. A cold start runs on isolated-vm's threads;
   *  requests that arrive while one is under way for a worker with no live isolate wait for it. */
  private async instanceFor(name: string): Promise<StartResult> {
    const def = this.definitions.get(name);
    if (!def) throw new Error(`no worker named "${name}"`);
    if (this.keptForSockets.size) this.restoreKept(name);
    let slot = this.slots.get(name);
    if (slot && slot.def.version !== def.version) {
      this.evict(name, 'redeployed');
      slot = undefined;
    }
    if (!slot) {
      slot = new WorkerSlot(def);
      this.slots.set(name, slot);
    }
    if (slot.loadError) return { loadError: slot.loadError, overLimit: slot.loadOverLimit, coldMs: null };
    const current = slot.pick();
    if (current && (slot.starting || !(slot.saturated() && slot.liveCount < this.maxIsolatesPerWorker))) return { instance: current, coldMs: null };
    if (slot.starting) return slot.starting;
    const starting = this.startInstance(slot);
    slot.starting = starting;
    try {
      return await starting;
    } finally {
      if (slot.starting === starting) slot.starting = null;
    }
  }

  private async startInstance(slot: WorkerSlot, started = performance.now()): Promise<StartResult> {
    const { def } = slot;
    this.coldStarts++;
    this.coldStartsByWorker.set(def.name, (this.coldStartsByWorker.get(def.name) ?? 0) + 1);
    const memoryMb = resolveLimits(def.limits).memoryMb;
    // A version whose snapshot pays off has its isolate made from it, off this thread.
    const useSnapshot = this.snapshots?.preferred(def) ?? false;
    if (useSnapshot) await this.snapshots!.prepare(def, memoryMb);
    const fromSnapshot = useSnapshot ? this.snapshots!.take(def, memoryMb) : undefined;
    const ready = fromSnapshot ?? (await this.pool.take(memoryMb, { background: this.background.has(def.name) }));
    const instance = new WorkerInstance(def, ready, this.host);
    ready.whenDisposed((reason) => {
      if (reason === 'cpu' || reason === 'memory') this.evictions.limit++;
      slot.remove(instance);
    });
    const loadStarted = performance.now();
    try {
      await instance.load();
      if (!fromSnapshot) this.snapshots?.recordPlainLoad(def, performance.now() - loadStarted);
    } catch (error) {
      ready.dispose('load failed', this.reaper);
      if (fromSnapshot) {
        // Not the worker's failure: its snapshot's. Stop using it and load plainly.
        this.snapshots!.refuse(def, (error as Error).message);
        this.coldStarts--;
        return this.startInstance(slot, started);
      }
      const loadError = (error as Error).message;
      this.logger.error({ worker: def.name, version: def.version, err: loadError }, `worker ${def.name} failed to load: ${loadError}`);
      const overLimit = error instanceof WorkerLoadError && error.overLimit;
      if (error instanceof WorkerLoadError) {
        slot.loadError = loadError;
        slot.loadOverLimit = overLimit;
      }
      return { loadError, overLimit, coldMs: performance.now() - started };
    }
    slot.add(instance);
    return { instance, coldMs: performance.now() - started };
  }

  /** Validate a definition by loading it in a throwaway isolate (on isolated-vm's threads);
   *  resolves to the load error, if any. */
  async check(def: WorkerDefinition): Promise<string | null> {
    return (await this.inspect(def)).error;
  }

  /** check(), and the names of the classes (functions) the main module exports: a deploy checks
   *  Durable Object bindings and migrations against them. */
  async inspect(def: WorkerDefinition): Promise<{ error: string | null; exportedClasses: string[] }> {
    const limits = resolveLimits(def.limits);
    const ready = await this.pool.take(limits.memoryMb);
    const instance = new WorkerInstance({ ...def, codeCache: this.workerCodeCache ? (def.codeCache ??= new Map()) : undefined }, ready, this.host);
    const exportedClasses: string[] = [];
    try {
      await instance.load(exportedClasses);
      return { error: null, exportedClasses };
    } catch (error) {
      return { error: (error as Error).message, exportedClasses };
    } finally {
      ready.dispose('check', this.reaper);
    }
  }

  /** `place`: for a service call, the calling request's tree and this invocation's depth. */
  async fetch(name: string, request: RuntimeRequest, requestId = newRequestId(), place?: InvocationPlace): Promise<RuntimeResponse> {
    // (a top-level request is charged its ingress too: reading it, writing the answer)
    const share = this.shareOf(name);
    const refusedByShare = this.waitForShare(share, place ? 1 : 2);
    if (refusedByShare) {
      const refused = await refusedByShare;
      if (refused !== undefined) return { status: 503, headers: [], body: null, coldMs: null, cpuMs: 0, refused, requestId };
    }
    this.activeRequests++;
    const running = this.started(name);
    try {
      const refusal = this.refusals.get(name);
      if (refusal !== undefined) return { status: 503, headers: [], body: null, coldMs: null, cpuMs: 0, refused: refusal, requestId };
      const { instance, loadError, overLimit, coldMs } = this.liveInstance(name) ?? (await this.instanceFor(name));
      if (!instance) {
        // A load that went over a limit (startup time, memory) is answered as any limit is.
        return { status: overLimit ? 503 : 500, headers: [], body: null, coldMs, cpuMs: 0, loadError, requestId };
      }
      const result = await instance.fetch(request, requestId, place);
      const cpuMs = result.invocation.cpuMs;
      if (result.webSocket !== undefined && result.response) {
        return { coldMs, cpuMs, requestId, status: 101, statusText: result.response.statusText, headers: result.response.headers, body: null, webSocket: { owner: instance, socketId: result.webSocket } };
      }
      if (result.limit) return { coldMs, cpuMs, requestId, status: 503, headers: [], body: null, limit: result.limit };
      if (result.exception || !result.response) return { coldMs, cpuMs, requestId, status: 500, headers: [], body: null, exception: result.exception, passThrough: result.passThrough || undefined };
      const response: WireResponse = result.response;
      const bodyLength = result.stream && Number.isSafeInteger(response.bodyLength) && response.bodyLength! >= 0 ? response.bodyLength : undefined;
      return { coldMs, cpuMs, requestId, status: response.status, statusText: response.statusText, headers: response.headers, body: response.body, stream: result.stream, bodyLength };
    } finally {
      this.activeRequests--;
      this.share.finished(share);
      this.finished(name, running);
    }
  }

  /**
   * An RPC call of `method` on worker `name`'s WorkerEntrypoint (`entrypoint`: a named export, or
   * null for the default), for a service binding; `place` as for fetch. Answers the method's value,
   * the exception it threw, the limit that ended it, or why it could not run.
   */
  async rpc(name: string, entrypoint: string | null, method: string, args: unknown[], requestId = newRequestId(), place?: InvocationPlace): Promise<RuntimeRpcResult> {
    const share = this.shareOf(name);
    const refusedByShare = this.waitForShare(share, 1);
    if (refusedByShare) {
      const refused = await refusedByShare;
      if (refused !== undefined) return { refused };
    }
    this.activeRequests++;
    const running = this.started(name);
    try {
      const refusal = this.refusals.get(name);
      if (refusal !== undefined) return { refused: refusal };
      const { instance, loadError } = this.liveInstance(name) ?? (await this.instanceFor(name));
      if (!instance) return { loadError };
      const result = await instance.rpc(entrypoint, method, args, requestId, place);
      if (result.limit) return { limit: result.limit };
      if (result.exception) return { exception: result.exception };
      if (result.oversize !== undefined) return { oversize: result.oversize };
      return { value: result.value };
    } finally {
      this.activeRequests--;
      this.share.finished(share);
      this.finished(name, running);
    }
  }

  /**
   * Charge an entry of `name` to its share of the serving thread (serving-share.ts). Null: it may
   * start now (the common case, no promise made). Otherwise a promise of undefined once a deferred
   * entry may start, or of the refusal's text when the worker's queue of deferred entries is full.
   */
  private waitForShare(account: ShareAccount, units: number, maxWaitMs?: number): Promise<string | undefined> | null {
    let wait: Promise<void> | null;
    try {
      wait = this.share.admit(account, units, maxWaitMs);
    } catch (error) {
      if (error instanceof ShareOverflowError) return Promise.resolve(error.message);
      throw error;
    }
    return wait && wait.then(() => undefined);
  }

  /** A worker's share of the serving thread, under its account's. */
  private shareOf(name: string): ShareAccount {
    return this.share.account(name, this.definitions.get(name)?.account ?? '');
  }

  // --- what runs, and who is refused (for the supervisor: see src/app/supervised.ts) ----------

  /** Invocations in flight by worker: token -> when it began (epoch ms). */
  private readonly running = new Map<string, Map<number, number>>();
  private nextRunning = 1;
  private readonly enterListeners: ((worker: string) => void)[] = [];
  /** workers whose requests are refused, with the reason shown to clients */
  private readonly refusals = new Map<string, string>();
  /** invocations begun and not ended, waitUntil work included (a draining server waits for 0) */
  private openInvocations = 0;

  /** Invocations still running anywhere in this runtime, waitUntil work included: a graceful stop
   *  waits for this to reach 0 (retired isolates finishing after a redeploy count too). */
  pendingInvocations(): number {
    return this.openInvocations;
  }

  /** Record an invocation of `name` beginning; answers the token finished() takes. */
  private started(name: string): number {
    const token = this.nextRunning++;
    let byWorker = this.running.get(name);
    if (!byWorker) this.running.set(name, (byWorker = new Map()));
    byWorker.set(token, Date.now());
    for (const listener of this.enterListeners) listener(name);
    return token;
  }

  private finished(name: string, token: number): void {
    const byWorker = this.running.get(name);
    if (!byWorker) return;
    byWorker.delete(token);
    if (byWorker.size === 0) this.running.delete(name);
  }

  /** Workers with invocations in flight now, each with the start (epoch ms) of its oldest one. */
  inFlightWorkers(): { worker: string; since: number }[] {
    const out: { worker: string; since: number }[] = [];
    for (const [worker, tokens] of this.running) out.push({ worker, since: Math.min(...tokens.values()) });
    return out;
  }

  /** Called as each invocation begins, before it enters an isolate. */
  onEnter(listener: (worker: string) => void): void {
    this.enterListeners.push(listener);
  }

  /** Refuse a worker's requests (fetch, cron, service calls) with a 503 and this reason; null lifts it. */
  refuse(name: string, reason: string | null): void {
    if (reason === null) this.refusals.delete(name);
    else this.refusals.set(name, reason);
  }

  async scheduled(name: string, cron: string, scheduledTime = Date.now(), requestId = newRequestId()) {
    const refusal = this.refusals.get(name);
    if (refusal !== undefined) return { outcome: 'exception' as const, error: refusal, coldMs: null, noRetry: true, requestId };
    // a cron event takes its turn on the serving thread as a request does (serving-share.ts)
    const share = this.shareOf(name);
    const refusedByShare = this.waitForShare(share, 1);
    if (refusedByShare) {
      const refused = await refusedByShare;
      if (refused !== undefined) return { outcome: 'exception' as const, error: refused, coldMs: null, noRetry: false, requestId };
    }
    const running = this.started(name);
    try {
      return await this.scheduledNow(name, cron, scheduledTime, requestId);
    } finally {
      this.share.finished(share);
      this.finished(name, running);
    }
  }

  private async scheduledNow(name: string, cron: string, scheduledTime: number, requestId: string) {
    const { instance, loadError, coldMs } = await this.instanceFor(name);
    if (!instance) return { outcome: 'exception' as const, error: loadError, coldMs, noRetry: false, requestId };
    const result = await instance.scheduled(cron, scheduledTime, requestId);
    if (result.limit) return { outcome: 'limit' as const, error: result.limit.message, coldMs, noRetry: false, requestId };
    if (result.exception) return { outcome: 'exception' as const, error: result.exception.stack, coldMs, noRetry: result.noRetry, requestId };
    return { outcome: 'ok' as const, coldMs, noRetry: result.noRetry, requestId };
  }

  /** Deliver a batch of queue messages to a worker's queue() handler. */
  async queue(name: string, queue: string, messages: WireQueueMessage[], requestId = newRequestId()): Promise<{ outcome: 'ok' | 'exception' | 'limit'; result?: QueueDispatchResult; error?: string; requestId: string }> {
    const refusal = this.refusals.get(name);
    if (refusal !== undefined) return { outcome: 'exception', error: refusal, requestId };
    // a batch takes its turn on the serving thread as a request does (serving-share.ts); refused,
    // its messages are retried as after any failed delivery
    const share = this.shareOf(name);
    const refusedByShare = this.waitForShare(share, 1);
    if (refusedByShare) {
      const refused = await refusedByShare;
      if (refused !== undefined) return { outcome: 'exception', error: refused, requestId };
    }
    const running = this.started(name);
    try {
      const { instance, loadError } = await this.instanceFor(name);
      if (!instance) return { outcome: 'exception', error: loadError, requestId };
      const out = await instance.queue(queue, messages, requestId);
      if (out.limit) return { outcome: 'limit', error: out.limit.message, requestId };
      if (out.exception) return { outcome: 'exception', result: out.result, error: out.exception.stack, requestId };
      return { outcome: 'ok', result: out.result, requestId };
    } finally {
      this.share.finished(share);
      this.finished(name, running);
    }
  }

  close(): void {
    this.objectHost?.close();
    this.watchdog.close();
    for (const slot of [...this.slots.values(), ...this.keptForSockets.values()]) for (const instance of slot.instances) instance.ready.dispose('shutdown');
    this.slots.clear();
    this.keptForSockets.clear();
    this.reaper.close();
    this.snapshots?.close();
    this.pool.close();
  }
}
