// What makes several serving processes (and nodes) behave as one platform, over the bus (bus.ts):
//   - a deploy, rollback, delete or route change made here is announced; the others reload that
//     worker from the shared store (SQLite file of the node, or Redis) and serve it, and log how
//     long after the announcement they served it ("deploy propagated": the node's own figure of
//     the "within 100 ms"; the announcement is made once the store has the write, just
//     before the deploying node answers; both clocks are the machines', so across machines their
//     skew is in the figure);
//   - after the bus reconnects, and every RECONCILE_MS, every worker is checked against the store
//     (pub/sub does not keep what was sent while a process was cut off);
//   - a KV write here drops the cached read of that key everywhere else;
//   - `tail` on any process sees the invocations of every process: a process with tail
//     subscribers announces its interest, and the others relay that worker's events while it lasts.
import type { Logger } from 'pino';
import type { Bus } from './bus.js';
import type { Deployments } from '../control/deployments.js';
import type { TailEvent, TailHub } from '../observability/tail.js';

const RECONCILE_MS = 30_000;
const INTEREST_EVERY_MS = 5_000;
const INTEREST_TTL_MS = 15_000;

export interface ScaleWiring {
  /** the bus itself, for what else must reach every process (per-worker log levels) */
  readonly bus: Bus;
  /** a KV write was applied here (KVServiceOptions.onWrite) */
  kvWritten(namespace: string, key: string): void;
  /** where remote KV invalidations go (the KV service, once it exists) */
  onKvInvalidate(handler: (namespace: string, key: string) => void): void;
  /** hand the tail hub over once the observability extension made it */
  attachTail(tail: TailHub): void;
  close(): void;
}

export function wireScale(options: { bus: Bus; deployments: Deployments; logger: Logger; node: string }): ScaleWiring {
  const { bus, deployments, logger, node } = options;
  const timers: NodeJS.Timeout[] = [];

  // --- deploys ------------------------------------------------------------------------------------
  deployments.onChange((event) => {
    if (event.type === 'deployed' && (event.reason === 'sync' || event.reason === 'restore')) return;
    if (event.type === 'deleted' && event.sync) return;
    bus.publish('deploy', { worker: event.worker, version: event.type === 'deployed' ? event.version.id : null, at: Date.now(), from: node });
  });
  bus.subscribe('deploy', (data) => {
    const { worker, version, at, from } = (data ?? {}) as { worker?: unknown; version?: unknown; at?: unknown; from?: unknown };
    if (typeof worker !== 'string') return;
    const heardAt = Date.now();
    deployments.sync(worker).then(
      (outcome) => {
        if (typeof at !== 'number') return;
        const servingMs = Date.now() - at;
        logger.info(
          { worker, version: typeof version === 'string' ? version : null, outcome, from: typeof from === 'string' ? from : null, heardMs: heardAt - at, servingMs },
          `deploy propagated: ${worker} ${outcome === 'deleted' ? 'gone' : 'serving'} here ${servingMs} ms after it was announced`,
        );
      },
      (error) => logger.error({ worker, err: (error as Error).message }, `could not load ${worker} after a change elsewhere; will retry at the next reconcile`),
    );
  });
  const reconcile = (why: string) =>
    deployments.syncAll().then(
      (changed) => {
        if (changed.deployed.length || changed.deleted.length) logger.info({ ...changed, why }, `reconciled with the store (${why})`);
      },
      (error) => logger.warn({ err: (error as Error).message, why }, 'could not reconcile with the store'),
    );
  if (bus.kind !== 'local') {
    bus.onReconnect(() => void reconcile('bus reconnected'));
    const timer = setInterval(() => void reconcile('periodic'), RECONCILE_MS);
    timer.unref();
    timers.push(timer);
  }

  // --- KV read cache --------------------------------------------------------------------------------
  const kvHandlers: ((namespace: string, key: string) => void)[] = [];
  bus.subscribe('kv', (data) => {
    const { namespace, key } = (data ?? {}) as { namespace?: unknown; key?: unknown };
    if (typeof namespace !== 'string' || typeof key !== 'string') return;
    for (const handler of kvHandlers) handler(namespace, key);
  });

  // --- tail -----------------------------------------------------------------------------------------
  let tailHub: TailHub | null = null;
  /** workers other processes tail, until when, and our relay for each */
  const interest = new Map<string, { until: number; stop: () => void }>();
  bus.subscribe('tail-interest', (data) => {
    const { worker, until } = (data ?? {}) as { worker?: unknown; until?: unknown };
    if (!tailHub || typeof worker !== 'string' || typeof until !== 'number') return;
    const current = interest.get(worker);
    if (current) current.until = Math.max(current.until, until);
    else interest.set(worker, { until, stop: tailHub.relay(worker, (event) => bus.publish('tail', { ...event, node })) });
  });
  bus.subscribe('tail', (data) => {
    const event = data as TailEvent;
    if (tailHub && event && typeof event.worker === 'string') tailHub.deliverRemote(event);
  });
  const announce = () => {
    if (!tailHub) return;
    const now = Date.now();
    for (const worker of tailHub.tailedWorkers()) bus.publish('tail-interest', { worker, until: now + INTEREST_TTL_MS });
    for (const [worker, entry] of interest) {
      if (entry.until > now) continue;
      entry.stop();
      interest.delete(worker);
    }
  };
  if (bus.kind !== 'local') {
    const timer = setInterval(announce, INTEREST_EVERY_MS);
    timer.unref();
    timers.push(timer);
  }

  return {
    bus,
    kvWritten(namespace, key) {
      bus.publish('kv', { namespace, key });
    },
    onKvInvalidate(handler) {
      kvHandlers.push(handler);
    },
    attachTail(tail) {
      tailHub = tail;
      if (bus.kind === 'local') return;
      // A new subscriber is announced at once, not at the next period.
      tail.onSubscribe((worker) => bus.publish('tail-interest', { worker, until: Date.now() + INTEREST_TTL_MS }));
    },
    close() {
      for (const timer of timers) clearInterval(timer);
      for (const entry of interest.values()) entry.stop();
      interest.clear();
    },
  };
}
