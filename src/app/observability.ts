// Observability for `cinder serve`, as a ServeExtension: usage metering into <data>/usage.sqlite,
// live tail, Prometheus metrics (cron runs included: it watches the node's cron triggers, which
// serve.ts runs) and per-worker log levels (kept in <data>/log-levels.json), plus the admin
// endpoints for all of them (control/observability-routes.ts).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CronScheduler } from '../data-plane/cron.js';
import { Metrics, type MetricsOptions } from '../observability/metrics.js';
import { TailHub } from '../observability/tail.js';
import { SqliteUsageStore, UsageMeter, type UsageStore } from '../observability/usage.js';
import type { Runtime } from '../runtime/runtime.js';
import { observabilityRoutes, WORKER_LOG_LEVELS } from '../control/observability-routes.js';
import type { ServeExtension } from './serve.js';

export interface ObservabilityOptions {
  /** where usage rows go (default: SQLite in <data>/usage.sqlite) */
  usageStore?: UsageStore;
  /** how often metered usage is written to the store (default 5 s) */
  usageFlushIntervalMs?: number;
  /** tail heartbeat period (default 15 s) */
  tailHeartbeatMs?: number;
  /** prom-client's process metrics (default true) */
  defaultMetrics?: boolean;
  /** the supervisor's restart counts, for cinder_supervisor_restarts_total (when supervised) */
  supervisorRestarts?: Record<string, number>;
  /** label node="..." on every series */
  node?: string;
  /** the node's other serving processes' metrics, summed into each scrape (metrics.ts) */
  gather?: MetricsOptions['gather'];
}

/** Everything the extension set up, for whoever embeds the server (tests, tools). */
export interface Observability {
  metrics: Metrics;
  usage: UsageMeter;
  tail: TailHub;
  scheduler: CronScheduler | null;
  logLevels: WorkerLogLevels;
}

/** Per-worker log levels, applied to the runtime and kept in a small JSON file. */
export class WorkerLogLevels {
  private readonly levels = new Map<string, string>();

  constructor(
    private readonly runtime: Pick<Runtime, 'setLogLevel' | 'logLevel'>,
    private readonly file: string | null,
    private readonly logger: Logger,
  ) {
    if (file && existsSync(file)) {
      try {
        const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
        for (const [worker, level] of Object.entries(saved)) {
          if (typeof level === 'string' && (WORKER_LOG_LEVELS as readonly string[]).includes(level)) this.apply(worker, level);
        }
      } catch (error) {
        logger.warn({ file, err: (error as Error).message }, 'could not read the per-worker log levels; using the server level for every worker');
      }
    }
  }

  get(worker: string): { level: string; default: boolean } {
    return { level: this.runtime.logLevel(worker), default: !this.levels.has(worker) };
  }

  set(worker: string, level: string | null): void {
    this.apply(worker, level);
    this.save();
    this.logger.info({ worker, level: level ?? 'default' }, `log level of ${worker}: ${level ?? 'the server level'}`);
  }

  /** Set by another process or node (heard on the bus): applied here, kept in its file there. */
  applyRemote(worker: string, level: string | null): void {
    if (level !== null && !(WORKER_LOG_LEVELS as readonly string[]).includes(level)) return;
    this.apply(worker, level);
  }

  forget(worker: string): void {
    if (!this.levels.has(worker)) return;
    this.apply(worker, null);
    this.save();
  }

  private apply(worker: string, level: string | null): void {
    if (level === null) this.levels.delete(worker);
    else this.levels.set(worker, level);
    this.runtime.setLogLevel(worker, level);
  }

  private save(): void {
    if (!this.file) return;
    const temp = `${this.file}.tmp`;
    writeFileSync(temp, JSON.stringify(Object.fromEntries(this.levels), null, 2) + '\n');
    renameSync(temp, this.file);
  }
}

export function observabilityExtension(options: ObservabilityOptions = {}, onReady?: (observability: Observability) => void): ServeExtension {
  return {
    name: 'observability',
    setup({ runtime, deployments, dataDir, logger, scheduler, scale }) {
      const tail = new TailHub(runtime);
      const metrics = new Metrics(runtime, { tailSubscribers: () => tail.subscriberCount(), defaultMetrics: options.defaultMetrics, supervisorRestarts: options.supervisorRestarts, node: options.node, gather: options.gather });
      const store = options.usageStore ?? new SqliteUsageStore(join(dataDir, 'usage.sqlite'));
      const usage = new UsageMeter({ store, logger, flushIntervalMs: options.usageFlushIntervalMs });
      runtime.onInvocation((record) => usage.record(record));
      const logLevels = new WorkerLogLevels(runtime, join(dataDir, 'log-levels.json'), logger);
      // A level set through any process applies in every process and node at once.
      if (scale) {
        const setHere = logLevels.set.bind(logLevels);
        logLevels.set = (worker, level) => {
          setHere(worker, level);
          scale.bus.publish('log-level', { worker, level });
        };
        scale.bus.subscribe('log-level', (data) => {
          const { worker, level } = (data ?? {}) as { worker?: unknown; level?: unknown };
          if (typeof worker === 'string' && (typeof level === 'string' || level === null)) logLevels.applyRemote(worker, level);
        });
      }

      scheduler?.onRun((run) => metrics.recordCronRun(run));
      deployments.onChange((event) => {
        if (event.type === 'deleted') {
          metrics.forget(event.worker);
          logLevels.forget(event.worker);
        }
      });

      onReady?.({ metrics, usage, tail, scheduler, logLevels });
      const app = observabilityRoutes({
        hasWorker: (name) => runtime.has(name),
        metrics,
        usage,
        tail,
        scheduler: scheduler ?? undefined,
        logLevels,
        heartbeatMs: options.tailHeartbeatMs,
      });
      return {
        adminRoutes: [{ path: '/', app }],
        async close() {
          await usage.close();
          await store.close();
          metrics.close();
        },
      };
    },
  };
}
