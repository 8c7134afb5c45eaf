// The Durable Object instances of this process: at most one live instance per object, each in an
// isolate of its own taken from the ready pool and loaded with the exporting worker's code. Events
// (stub fetch, RPC calls, alarms) enter it as add-on events (sandbox/addon-events.ts) under the
// same CPU, wall and memory limits as any invocation, metered one record per event; the guest half
// (sandbox/addons/durable-objects.ts) constructs the class on the first event and applies the input
// and output gates.
//
// Why an isolate per object rather than workerd's many objects of a class in one isolate: here an
// isolate is cheap to bring up (the pool, ~0.5 ms) and small (~2.6 MB), and with one object per
// isolate a limit one object breaks (CPU, memory) resets that object alone, never its neighbours;
// eviction frees exactly the object's memory; and the isolate's state is the object's state, so
// "one instance per id" is one isolate per id. The price is memory per live object, bounded by
// idle eviction (10 s without an event, as workerd evicts after ~10 s) and a cap on live objects.
import type { Logger } from 'pino';
import type { WorkerDefinition } from '../../model/worker-definition.js';
import type { InvocationPlace } from '../../model/request-tree.js';
import type { GuestException } from '../../../protocol/wall.js';
import type { LimitExceededError } from '../../model/limits.js';
import type { AddonEventOptions, WorkerInstance } from '../worker-instance.js';
import type { InvocationTrigger } from '../invocation.js';
import { DURABLE_OBJECT_HOST_FLAG } from '../../../protocol/addons.js';
import type { SocketOwner } from '../contract.js';
import { liveObjectCaps } from '../../model/live-object-caps.js';

export interface ObjectHostRuntime {
  definition(name: string): WorkerDefinition | undefined;
  /** a loaded instance of `def` in its own isolate (throws WorkerLoadError) */
  startInstance(def: WorkerDefinition): Promise<WorkerInstance>;
  /** an event of the worker begins: the supervisor blames what is in flight if the process hangs */
  track(name: string): { done(): void };
  /** why the worker's events are refused now (quarantined by the supervisor), or undefined */
  refusal(name: string): string | undefined;
  /** the event's turn on the serving thread (serving-share.ts): null to start now, else a promise
   *  of undefined when it may, or of the refusal's text; `finish` once the event is over */
  shareTurn?(name: string, maxWaitMs: number | undefined): { turn: Promise<string | undefined> | null; finish(): void };
  logger: Logger;
}

export interface ObjectHostOptions {
  /** an object with no event for this long is evicted (its isolate disposed); default 10 s */
  idleMs?: number;
  /** live objects (isolates) at most; past it an idle one is evicted, and with none idle a new
   *  object is refused until one is; default 1,000 (each is an isolate, and the process's isolates
   *  are bounded by vm.max_map_count: see defaultMaxLiveWorkers) */
  maxLive?: number;
  /** live objects one account may hold at once, at most `maxLive`; default half of it (500), so
   *  one tenant cannot take every slot from the others. Past it the account's own idle object is
   *  evicted, and with none idle its new object is refused. */
  maxLivePerAccount?: number;
}

/** Host-side state of one hosted object (its storage), set as op state of its isolate. */
export interface HostedObject {
  state: unknown;
  close(): void;
}

/** Which object an event is for. The caller (the binding's host half) has checked the id. */
export interface ObjectTarget {
  /** unique per object on this server (namespace storage dir and id) */
  key: string;
  /** under placement, the identity this process holds the object under: a live instance made
   *  under another (before the process's lease lapsed) is retired, never reused */
  generation?: string;
  account: string;
  /** the worker that exports the class */
  script: string;
  /** the op-state family the hosted state is set under */
  family: string;
  open(): HostedObject;
}

export interface ObjectEventOutcome {
  /** the instance that ran the event: the owner of a WebSocket its answer carries */
  owner?: SocketOwner;
  result?: unknown;
  /** a streamed response body, read by whoever answers the caller (the event stays open until then) */
  stream?: AsyncGenerator<Uint8Array | string, void, undefined>;
  exception?: GuestException;
  limit?: LimitExceededError;
  loadError?: string;
}

interface LiveObject {
  key: string;
  account: string;
  generation: string | undefined;
  script: string;
  version: string;
  ready: Promise<WorkerInstance>;
  instance: WorkerInstance | null;
  hosted: HostedObject | null;
  events: number;
  idleTimer: NodeJS.Timeout | null;
  retired: boolean;
  /** resolves once a retired object has no event left and its storage is closed */
  drained: Promise<void>;
  markDrained: () => void;
}

export const DEFAULT_OBJECT_IDLE_MS = 10_000;

/** Why an object's instance went: idle (or evicted for room), its worker redeployed or removed, a
 *  limit or a failed load, or the server shutting down. */
export type RetireReason = 'evicted' | 'redeployed' | 'failed' | 'shutdown' | 'lease lapsed';

export class ObjectHost {
  private readonly live = new Map<string, LiveObject>();
  private readonly idleMs: number;
  private readonly maxLive: number;
  private readonly maxLivePerAccount: number;
  /** live objects per account */
  private readonly accounts = new Map<string, number>();
  /** objects created since start (re-creations after eviction included) */
  created = 0;
  evicted = 0;
  private readonly retiredListeners: ((key: string, reason: RetireReason) => void)[] = [];
  private readonly workerListeners: ((script: string) => void)[] = [];

  constructor(
    private readonly runtime: ObjectHostRuntime,
    options: ObjectHostOptions = {},
  ) {
    this.idleMs = options.idleMs ?? DEFAULT_OBJECT_IDLE_MS;
    ({ maxLive: this.maxLive, maxLivePerAccount: this.maxLivePerAccount } = liveObjectCaps(options.maxLive, options.maxLivePerAccount));
  }

  get liveCount(): number {
    return this.live.size;
  }

  isLive(key: string): boolean {
    return this.live.has(key);
  }

  /** Be told when a worker's objects restart on new code (redeployed) or go (removed), live or not. */
  onWorkerRetired(listener: (script: string) => void): void {
    this.workerListeners.push(listener);
  }

  /** Be told when an object's instance goes (its hibernatable WebSockets outlive it, or not). */
  onRetired(listener: (key: string, reason: RetireReason) => void): void {
    this.retiredListeners.push(listener);
  }

  /** Deliver one event to the object, creating (or re-creating) it first when it is not live. */
  async deliver(target: ObjectTarget, kind: string, payload: unknown, requestId: string, place: InvocationPlace | undefined, trigger: InvocationTrigger, options?: AddonEventOptions): Promise<ObjectEventOutcome> {
    const def = this.runtime.definition(target.script);
    // The exporting worker must still be this account's (a name may be deleted and taken by another).
    if (!def || (def.account ?? '') !== target.account) return { loadError: `no worker named "${target.script}" is deployed` };
    const refusal = this.runtime.refusal(target.script);
    if (refusal !== undefined) return { loadError: refusal };
    // Deferred while its worker is over its share of a saturated serving thread: the worker's
    // queue is first in, first out, so one object's events still start in the order they came.
    const share = this.runtime.shareTurn?.(target.script, options?.wallMs);
    if (share?.turn) {
      const refused = await share.turn;
      if (refused !== undefined) {
        share.finish();
        return { loadError: refused };
      }
    }
    const running = this.runtime.track(target.script);
    try {
      return await this.deliverTo(target, def, kind, payload, requestId, place, trigger, options);
    } finally {
      running.done();
      share?.finish();
    }
  }

  private async deliverTo(target: ObjectTarget, def: WorkerDefinition, kind: string, payload: unknown, requestId: string, place: InvocationPlace | undefined, trigger: InvocationTrigger, options: AddonEventOptions | undefined): Promise<ObjectEventOutcome> {
    let object = this.live.get(target.key);
    if (object && (object.version !== def.version || object.generation !== target.generation || (object.instance !== null && !object.instance.alive))) {
      this.retire(object, object.version !== def.version ? 'redeployed' : object.generation !== target.generation ? 'lease lapsed' : 'failed');
      object = undefined;
    }
    if (!object) {
      const refused = this.makeRoom(target.account);
      if (refused) return { loadError: refused };
      object = this.create(target, def, this.live.get(target.key));
    }
    object.events++;
    if (object.idleTimer) clearTimeout(object.idleTimer);
    object.idleTimer = null;
    try {
      let instance: WorkerInstance;
      try {
        instance = await object.ready;
      } catch (error) {
        this.retire(object, 'failed');
        return { loadError: (error as Error).message };
      }
      const out = await instance.addonEvent(kind, payload, requestId, place, trigger, options);
      // A limit recycled the isolate: the object is re-created from storage on its next event.
      if (out.limit || !instance.alive) this.retire(object, 'failed');
      return { owner: instance, result: out.result, stream: out.stream, exception: out.exception, limit: out.limit };
    } finally {
      object.events--;
      this.settled(object);
    }
  }

  private create(target: ObjectTarget, def: WorkerDefinition, previous: LiveObject | undefined): LiveObject {
    let markDrained!: () => void;
    const drained = new Promise<void>((resolve) => (markDrained = resolve));
    const object: LiveObject = { key: target.key, account: target.account, generation: target.generation, script: target.script, version: def.version, ready: null!, instance: null, hosted: null, events: 0, idleTimer: null, retired: false, drained, markDrained };
    object.ready = (async () => {
      // One instance per object: a retired one (an older version) finishes its events first.
      if (previous) await previous.drained;
      const instance = await this.runtime.startInstance(this.hostingDefinition(def));
      let hosted: HostedObject;
      try {
        hosted = target.open();
      } catch (error) {
        // The object's storage cannot be opened (permissions, a damaged file): no object.
        instance.retire('durable object storage failed');
        throw error;
      }
      object.instance = instance;
      object.hosted = hosted;
      instance.setOpState(target.family, hosted.state);
      this.created++;
      if (object.retired) this.settled(object);
      return instance;
    })();
    object.ready.catch(() => {});
    const replaced = this.live.get(target.key);
    if (replaced) this.forget(replaced);
    this.live.set(target.key, object);
    this.accounts.set(object.account, (this.accounts.get(object.account) ?? 0) + 1);
    return object;
  }

  private readonly hosting = new WeakMap<WorkerDefinition, WorkerDefinition>();

  /** The definition an object's isolate is loaded with: the worker's, flagged so the isolate gets
   *  the add-on that runs objects (protocol/addons.ts). One per version, so what is worked out per
   *  definition (add-ons, code cache) is shared by its objects. */
  private hostingDefinition(def: WorkerDefinition): WorkerDefinition {
    let hosting = this.hosting.get(def);
    if (!hosting) {
      hosting = { ...def, compatibilityFlags: [...(def.compatibilityFlags ?? []), DURABLE_OBJECT_HOST_FLAG] };
      this.hosting.set(def, hosting);
    }
    return hosting;
  }

  /** After an event: arm the idle timer, or finish a retired object's retirement. */
  private settled(object: LiveObject): void {
    if (object.events > 0) return;
    if (object.retired) {
      if (object.instance && object.instance.inFlight.size > 0) {
        // waitUntil work or timers of its last event: let them end first.
        setTimeout(() => this.settled(object), 50).unref();
        return;
      }
      object.instance?.retire('durable object retired');
      object.hosted?.close();
      object.hosted = null;
      object.markDrained();
      return;
    }
    if (object.idleTimer) clearTimeout(object.idleTimer);
    object.idleTimer = setTimeout(() => this.idle(object), this.idleMs);
    object.idleTimer.unref();
  }

  private idle(object: LiveObject): void {
    object.idleTimer = null;
    if (object.events > 0 || object.retired) return;
    // Work of its last event, or WebSockets it accepted (ws.accept(): they live in its isolate;
    // hibernatable ones do not keep it).
    if (object.instance && (object.instance.inFlight.size > 0 || object.instance.openSockets > 0)) {
      this.settled(object);
      return;
    }
    this.evicted++;
    this.retire(object, 'evicted');
  }

  private retire(object: LiveObject, reason: RetireReason): void {
    if (object.retired) return;
    object.retired = true;
    if (object.idleTimer) clearTimeout(object.idleTimer);
    object.idleTimer = null;
    if (this.live.get(object.key) === object) this.forget(object);
    for (const listener of this.retiredListeners) listener(object.key, reason);
    // Not loaded yet: the load finishes (or fails) and settles it then.
    if (object.instance || object.events === 0) void object.ready.then(() => this.settled(object), () => object.markDrained());
  }

  private forget(object: LiveObject): void {
    this.live.delete(object.key);
    const count = (this.accounts.get(object.account) ?? 1) - 1;
    if (count > 0) this.accounts.set(object.account, count);
    else this.accounts.delete(object.account);
  }

  /**
   * Room for one more object of `account`, or why there is none. An account at its cap makes room
   * among its own objects only. A full server evicts an idle object of the account holding the
   * most, so the tenant that fills it pays first and a neighbour's objects go last.
   */
  private makeRoom(account: string): string | undefined {
    // (An account allowed every slot is at the process's cap, below, with its message.)
    if (this.maxLivePerAccount < this.maxLive && (this.accounts.get(account) ?? 0) >= this.maxLivePerAccount) {
      return this.evictOneIdle(account) ? undefined : `this account holds its maximum of ${this.maxLivePerAccount} live Durable Objects on this server, all busy; try again shortly`;
    }
    if (this.live.size < this.maxLive) return undefined;
    const byHolding = [...this.accounts].sort((a, b) => b[1] - a[1]);
    for (const [holder] of byHolding) if (this.evictOneIdle(holder)) return undefined;
    return `this server holds its maximum of ${this.maxLive} live Durable Objects, all busy; try again shortly`;
  }

  /** Evict one object of `account` with nothing in flight (the oldest created first); false when all are busy. */
  private evictOneIdle(account: string): boolean {
    for (const object of this.live.values()) {
      if (object.account === account && object.events === 0 && object.instance && object.instance.inFlight.size === 0 && object.instance.openSockets === 0) {
        this.evicted++;
        this.retire(object, 'evicted');
        return true;
      }
    }
    return false;
  }

  /** Retire every object of a worker (redeployed or removed): they restart from storage. */
  retireWorker(script: string): void {
    for (const object of [...this.live.values()]) if (object.script === script) this.retire(object, 'redeployed');
    for (const listener of this.workerListeners) listener(script);
  }

  close(): void {
    for (const object of [...this.live.values()]) {
      this.retire(object, 'shutdown');
      object.instance?.ready.dispose('shutdown');
      object.hosted?.close();
      object.hosted = null;
    }
  }
}
