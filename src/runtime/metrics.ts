// Prometheus metrics for `GET /metrics` (admin port), on a Registry of their own (never the
// prom-client global one, so several runtimes in one process do not mix). Every name starts with
// `cinder_`; everything that belongs to a worker carries a `worker` label.
//
//   cinder_requests_total{worker,outcome}             fetch invocations by outcome
//   cinder_scheduled_runs_total{worker,outcome}       cron runs: invocation outcomes, plus
//                                                     "skipped" (previous run still going) and
//                                                     "unavailable" (worker gone)
//   cinder_invocation_cpu_seconds{worker}             histogram, isolate thread CPU per invocation
//   cinder_invocation_wall_seconds{worker}            histogram, wall time per invocation
//   cinder_subrequests_total{worker}, cinder_request_bytes_total{worker,direction}
//   cinder_cold_starts_total{worker}                  isolates brought up for a worker
//   cinder_worker_isolates{worker}                    live isolates now (0 = scaled to zero;
//                                                     >1 = scaled up), cinder_live_isolates in all
//   cinder_workers                                    deployed workers
//   cinder_isolate_evictions_total{reason}            idle | capacity | redeploy | limit
//   cinder_pool_ready_isolates, cinder_pool_target_isolates, cinder_pool_bytes,
//   cinder_pool_isolates_created_total, cinder_pool_takes_total, cinder_pool_misses_total
//   cinder_kv_operations_total{worker,op,namespace}   counted by the KV binding (counters.ts)
//   cinder_tail_subscribers                           live tail connections
//   cinder_process_*, cinder_nodejs_*                 prom-client's default process metrics
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Runtime } from './runtime.js';
import type { InvocationRecord } from './worker-instance.js';
import type { CronRun } from './cron.js';
import { setKvOperationSink } from './counters.js';

const CPU_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const WALL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface MetricsOptions {
  /** prom-client's process metrics (CPU, RSS, event loop lag, GC) as cinder_process_* (default true) */
  defaultMetrics?: boolean;
  /** live tail connections, for cinder_tail_subscribers */
  tailSubscribers?: () => number;
}

/** What the metrics read from the runtime (a Runtime, or a stand-in in tests). */
type RuntimeView = Pick<Runtime, 'onInvocation' | 'coldStartsByWorker' | 'evictions' | 'liveIsolates' | 'isolatesOf' | 'poolStats' | 'workers'>;

interface WorkerChildren {
  cpu: ReturnType<Histogram<'worker'>['labels']>;
  wall: ReturnType<Histogram<'worker'>['labels']>;
  subrequests: ReturnType<Counter<'worker'>['labels']>;
  bytesIn: ReturnType<Counter<'worker' | 'direction'>['labels']>;
  bytesOut: ReturnType<Counter<'worker' | 'direction'>['labels']>;
  outcomes: Map<string, ReturnType<Counter<'worker' | 'outcome'>['labels']>>;
  scheduled: Map<string, ReturnType<Counter<'worker' | 'outcome'>['labels']>>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'worker' | 'outcome'>;
  private readonly scheduledRuns: Counter<'worker' | 'outcome'>;
  private readonly cpu: Histogram<'worker'>;
  private readonly wall: Histogram<'worker'>;
  private readonly subrequests: Counter<'worker'>;
  private readonly bytes: Counter<'worker' | 'direction'>;
  private readonly coldStarts: Counter<'worker'>;
  private readonly kvOperations: Counter<'worker' | 'op' | 'namespace'>;
  private readonly children = new Map<string, WorkerChildren>();
  /** KV label sets seen, by worker (to drop them with the worker) */
  private readonly kvLabels = new Map<string, Set<string>>();

  constructor(
    private readonly runtime: RuntimeView,
    options: MetricsOptions = {},
  ) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'cinder_requests_total', help: 'Fetch invocations by worker and outcome.', labelNames: ['worker', 'outcome'], registers });
    this.scheduledRuns = new Counter({
      name: 'cinder_scheduled_runs_total',
      help: 'Cron runs by worker and outcome (skipped: the previous run was still going).',
      labelNames: ['worker', 'outcome'],
      registers,
    });
    this.cpu = new Histogram({ name: 'cinder_invocation_cpu_seconds', help: 'CPU time per invocation (isolate thread CPU clock).', labelNames: ['worker'], buckets: CPU_BUCKETS, registers });
    this.wall = new Histogram({ name: 'cinder_invocation_wall_seconds', help: 'Wall time per invocation, waitUntil included.', labelNames: ['worker'], buckets: WALL_BUCKETS, registers });
    this.subrequests = new Counter({ name: 'cinder_subrequests_total', help: 'Outbound fetches and service calls made by invocations.', labelNames: ['worker'], registers });
    this.bytes = new Counter({ name: 'cinder_request_bytes_total', help: 'Body bytes into (in) and out of (out) invocations.', labelNames: ['worker', 'direction'], registers });
    this.kvOperations = new Counter({ name: 'cinder_kv_operations_total', help: 'KV operations by worker, operation and namespace.', labelNames: ['worker', 'op', 'namespace'], registers });

    // Counted by the runtime: brought up to date at each scrape.
    const lastColdStarts = new Map<string, number>();
    this.coldStarts = new Counter({
      name: 'cinder_cold_starts_total',
      help: 'Isolates brought up for a worker (cold starts, scale-ups included).',
      labelNames: ['worker'],
      registers,
      collect() {
        for (const [worker, n] of runtime.coldStartsByWorker) {
          const delta = n - (lastColdStarts.get(worker) ?? 0);
          if (delta > 0) this.inc({ worker }, delta);
          lastColdStarts.set(worker, n);
        }
      },
    });
    const lastEvictions: Record<string, number> = {};
    new Counter({
      name: 'cinder_isolate_evictions_total',
      help: 'Isolates disposed, by reason: idle (scale to zero), capacity (LRU), redeploy, limit (CPU or memory breach).',
      labelNames: ['reason'],
      registers,
      collect() {
        for (const [reason, n] of Object.entries(runtime.evictions)) {
          const delta = n - (lastEvictions[reason] ?? 0);
          if (delta > 0 || lastEvictions[reason] === undefined) this.inc({ reason }, Math.max(0, delta));
          lastEvictions[reason] = n;
        }
      },
    });
    new Gauge({
      name: 'cinder_live_isolates',
      help: 'Isolates serving workers now.',
      registers,
      collect() {
        this.set(runtime.liveIsolates());
      },
    });
    new Gauge({
      name: 'cinder_worker_isolates',
      help: 'Live isolates per deployed worker (0: scaled to zero; more than 1: scaled up).',
      labelNames: ['worker'],
      registers,
      collect() {
        this.reset();
        for (const worker of runtime.workers()) this.set({ worker }, runtime.isolatesOf(worker));
      },
    });
    new Gauge({
      name: 'cinder_workers',
      help: 'Deployed workers.',
      registers,
      collect() {
        this.set(runtime.workers().length);
      },
    });
    this.poolMetrics(registers);
    if (options.tailSubscribers) {
      const count = options.tailSubscribers;
      new Gauge({
        name: 'cinder_tail_subscribers',
        help: 'Open live tail connections.',
        registers,
        collect() {
          this.set(count());
        },
      });
    }
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'cinder_' });

    runtime.onInvocation((record) => this.record(record));
    setKvOperationSink(runtime, (worker, op, namespace = '') => {
      let seen = this.kvLabels.get(worker);
      if (!seen) this.kvLabels.set(worker, (seen = new Set()));
      seen.add(`${op}\0${namespace}`);
      this.kvOperations.inc({ worker, op, namespace });
    });
  }

  private poolMetrics(registers: Registry[]): void {
    const runtime = this.runtime;
    let stats = runtime.poolStats();
    let statsAt = 0;
    // One poolStats() per scrape, shared by the pool metrics.
    const fresh = () => {
      const now = Date.now();
      if (now - statsAt > 50) {
        stats = runtime.poolStats();
        statsAt = now;
      }
      return stats;
    };
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('cinder_pool_ready_isolates', 'Blank isolates ready for cold starts.', () => fresh().ready);
    gauge('cinder_pool_target_isolates', 'Ready isolates the pool aims for (follows the cold-start rate).', () => fresh().target);
    gauge('cinder_pool_bytes', 'Estimated memory held by ready isolates.', () => fresh().bytes);
    const counter = (name: string, help: string, read: () => number) => {
      let last = 0;
      return new Counter({
        name,
        help,
        registers,
        collect() {
          const n = read();
          if (n > last) this.inc(n - last);
          last = n;
        },
      });
    };
    counter('cinder_pool_isolates_created_total', 'Isolates the pool made.', () => fresh().created);
    counter('cinder_pool_takes_total', 'Cold starts served by the pool.', () => fresh().taken);
    counter('cinder_pool_misses_total', 'Cold starts that found the pool empty.', () => fresh().misses);
  }

  private childrenOf(worker: string): WorkerChildren {
    let children = this.children.get(worker);
    if (!children) {
      children = {
        cpu: this.cpu.labels(worker),
        wall: this.wall.labels(worker),
        subrequests: this.subrequests.labels(worker),
        bytesIn: this.bytes.labels(worker, 'in'),
        bytesOut: this.bytes.labels(worker, 'out'),
        outcomes: new Map(),
        scheduled: new Map(),
      };
      this.children.set(worker, children);
    }
    return children;
  }

  /** One invocation (Runtime.onInvocation). Label lookups are cached per worker: this is the hot path. */
  record(record: InvocationRecord): void {
    const children = this.childrenOf(record.worker);
    const byOutcome = record.kind === 'scheduled' ? children.scheduled : children.outcomes;
    let counter = byOutcome.get(record.outcome);
    if (!counter) {
      counter = (record.kind === 'scheduled' ? this.scheduledRuns : this.requests).labels(record.worker, record.outcome);
      byOutcome.set(record.outcome, counter);
    }
    counter.inc();
    children.cpu.observe(record.cpuMs / 1000);
    children.wall.observe(record.wallMs / 1000);
    if (record.subrequests) children.subrequests.inc(record.subrequests);
    if (record.bytesIn) children.bytesIn.inc(record.bytesIn);
    if (record.bytesOut) children.bytesOut.inc(record.bytesOut);
  }

  /** A cron run that never became an invocation (skipped, worker gone). */
  recordCronRun(run: CronRun): void {
    if (run.outcome === 'skipped' || run.outcome === 'unavailable') this.scheduledRuns.inc({ worker: run.worker, outcome: run.outcome });
  }

  /** Drop a deleted worker's series. */
  forget(worker: string): void {
    const children = this.children.get(worker);
    if (children) {
      for (const outcome of children.outcomes.keys()) this.requests.remove(worker, outcome);
      for (const outcome of children.scheduled.keys()) this.scheduledRuns.remove(worker, outcome);
      this.children.delete(worker);
    }
    for (const outcome of ['skipped', 'unavailable']) this.scheduledRuns.remove(worker, outcome);
    this.cpu.remove(worker);
    this.wall.remove(worker);
    this.subrequests.remove(worker);
    this.bytes.remove(worker, 'in');
    this.bytes.remove(worker, 'out');
    this.coldStarts.remove(worker);
    for (const key of this.kvLabels.get(worker) ?? []) {
      const [op, namespace] = key.split('\0');
      this.kvOperations.remove({ worker, op, namespace });
    }
    this.kvLabels.delete(worker);
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    setKvOperationSink(this.runtime, null);
    this.registry.clear();
  }
}
