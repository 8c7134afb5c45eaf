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
//   cinder_isolates_awaiting_dispose                  retired isolates not freed yet (reaper)
//   cinder_durable_objects_live                       Durable Objects live now (isolates of their own)
//   cinder_pool_ready_isolates, cinder_pool_target_isolates, cinder_pool_bytes,
//   cinder_pool_building_isolates, cinder_pool_cold_start_rate, cinder_pool_refill_seconds,
//   cinder_pool_isolates_created_total, cinder_pool_takes_total, cinder_pool_misses_total
//   cinder_kv_operations_total{worker,op,namespace}   counted by the KV binding (counters.ts)
//   cinder_tail_subscribers                           live tail connections
//   cinder_serving_share_deferred_total{worker}       entries started late: the worker was over its
//                                                     share of the saturated serving thread
//   cinder_serving_share_refused_total{worker}        entries refused (503): its deferred queue was full
//   cinder_serving_share_deferred_by_account_total{worker}  of those deferred, the ones its account's
//                                                     share held back (the worker within its own)
//   cinder_background_workers                         workers whose isolates run in the background
//                                                     class of isolate threads now (a CPU breach)
//   cinder_background_moves_total{worker}             times a worker was moved to that class
//   cinder_supervisor_restarts_total{reason}          restarts of serving processes (exit, hang)
//   cinder_serving_processes                          serving processes running now (supervised)
//   every series carries node="<--node-id>"; with --processes N one scrape answers for every
//   serving process of the node, summed (gauges of the whole node, such as cinder_workers, max)
//   cinder_process_*, cinder_nodejs_*                 prom-client's default process metrics
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { Runtime } from '../runtime/runtime.js';
import type { InvocationRecord } from '../runtime/invocation.js';
import type { CronRun } from '../data-plane/cron.js';
import { queueMetricsOf, setKvOperationSink } from './counters.js';

const CPU_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const WALL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface MetricsOptions {
  /** prom-client's process metrics (CPU, RSS, event loop lag, GC) as cinder_process_* (default true) */
  defaultMetrics?: boolean;
  /** live tail connections, for cinder_tail_subscribers */
  tailSubscribers?: () => number;
  /** restarts of the serving process by its supervisor so far, by reason (exit, hang) */
  supervisorRestarts?: Record<string, number>;
  /** the node's name, as label node="..." on every series (cinder serve --node-id) */
  node?: string;
  /**
   * The metrics of the node's other serving processes (and the supervisor's own), as
   * getMetricsAsJSON() gives them: a scrape then answers for the whole node, summed.
   */
  gather?: () => Promise<MetricsJSON[]>;
}

/** One process's metrics as prom-client's getMetricsAsJSON() gives them. */
export type MetricsJSON = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** What the metrics read from the runtime (a Runtime, or a stand-in in tests). */
type RuntimeView = Pick<Runtime, 'onInvocation' | 'coldStartsByWorker' | 'evictions' | 'liveIsolates' | 'isolatesAwaitingDispose' | 'isolatesOf' | 'poolStats' | 'workers'> & Partial<Pick<Runtime, 'liveObjects' | 'share' | 'background'>>;

type Labels = Record<string, string>;
interface ExportedValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

// The per-invocation metrics are counted in plain numbers and handed to the registry as custom
// metrics at scrape time: prom-client's own Counter/Histogram hash their labels on every call
// (~0.5-1 µs each, four of them a request), which is too much for the request path.

/** Plain-number histogram series, one per label value. */
class Buckets {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    if (i < bounds.length) this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/** A registry metric computed at scrape time from `values()`. */
function customMetric(registry: Registry, name: string, help: string, type: 'counter' | 'histogram' | 'gauge', values: () => ExportedValue[] | Promise<ExportedValue[]>): void {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: await values() }),
    reset() {},
  };
  registry.registerMetric(metric as unknown as Metric);
}

function histogramValues(name: string, series: Map<string, Buckets>, label: string): ExportedValue[] {
  const out: ExportedValue[] = [];
  for (const [key, h] of series) {
    let cumulative = 0;
    h.bounds.forEach((bound, i) => {
      cumulative += h.counts[i];
      out.push({ labels: { [label]: key, le: String(bound) }, value: cumulative, metricName: `${name}_bucket` });
    });
    out.push({ labels: { [label]: key, le: '+Inf' }, value: h.count, metricName: `${name}_bucket` });
    out.push({ labels: { [label]: key }, value: h.sum, metricName: `${name}_sum` });
    out.push({ labels: { [label]: key }, value: h.count, metricName: `${name}_count` });
  }
  return out;
}

interface WorkerSeries {
  outcomes: Map<string, number>;
  scheduled: Map<string, number>;
  cpu: Buckets;
  wall: Buckets;
  subrequests: number;
  bytesIn: number;
  bytesOut: number;
  /** KV operations by "op\0namespace" */
  kv: Map<string, number>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly series = new Map<string, WorkerSeries>();
  private readonly coldStarts: Counter<'worker'>;
  private readonly gather: MetricsOptions['gather'];

  constructor(
    private readonly runtime: RuntimeView,
    options: MetricsOptions = {},
  ) {
    const registers = [this.registry];
    this.gather = options.gather;
    if (options.node) this.registry.setDefaultLabels({ node: options.node });
    const each = <T>(pick: (worker: string, s: WorkerSeries) => T[]): T[] => [...this.series].flatMap(([worker, s]) => pick(worker, s));
    customMetric(this.registry, 'cinder_requests_total', 'Fetch invocations by worker and outcome.', 'counter', () =>
      each((worker, s) => [...s.outcomes].map(([outcome, value]) => ({ labels: { worker, outcome }, value }))),
    );
    customMetric(this.registry, 'cinder_scheduled_runs_total', 'Cron runs by worker and outcome (skipped: the previous run was still going).', 'counter', () =>
      each((worker, s) => [...s.scheduled].map(([outcome, value]) => ({ labels: { worker, outcome }, value }))),
    );
    customMetric(this.registry, 'cinder_invocation_cpu_seconds', 'CPU time per invocation (isolate thread CPU clock).', 'histogram', () =>
      histogramValues('cinder_invocation_cpu_seconds', new Map([...this.series].map(([w, s]) => [w, s.cpu])), 'worker'),
    );
    customMetric(this.registry, 'cinder_invocation_wall_seconds', 'Wall time per invocation, waitUntil included.', 'histogram', () =>
      histogramValues('cinder_invocation_wall_seconds', new Map([...this.series].map(([w, s]) => [w, s.wall])), 'worker'),
    );
    customMetric(this.registry, 'cinder_subrequests_total', 'Outbound fetches and service calls made by invocations.', 'counter', () =>
      each((worker, s) => [{ labels: { worker }, value: s.subrequests }]),
    );
    customMetric(this.registry, 'cinder_request_bytes_total', 'Body bytes into (in) and out of (out) invocations.', 'counter', () =>
      each((worker, s) => [
        { labels: { worker, direction: 'in' }, value: s.bytesIn },
        { labels: { worker, direction: 'out' }, value: s.bytesOut },
      ]),
    );
    customMetric(this.registry, 'cinder_kv_operations_total', 'KV operations by worker, operation and namespace.', 'counter', () =>
      each((worker, s) =>
        [...s.kv].map(([key, value]) => {
          const [op, namespace] = key.split('\0');
          return { labels: { worker, op, namespace }, value };
        }),
      ),
    );

    customMetric(this.registry, 'cinder_queue_depth', 'Messages waiting or in flight, by account and queue.', 'gauge', () =>
      queueMetricsOf(runtime).then((rows) => rows.map((q) => ({ labels: { account: q.account, queue: q.queue }, value: q.depth }))),
    );
    customMetric(this.registry, 'cinder_queue_messages_total', 'Queue messages by what happened to them: delivered (to a consumer batch), acked, retried, dead_lettered, dropped.', 'counter', () =>
      queueMetricsOf(runtime).then((rows) =>
        rows.flatMap((q) =>
          (['delivered', 'acked', 'retried', 'deadLettered', 'dropped'] as const).map((event) => ({ labels: { account: q.account, queue: q.queue, event: event === 'deadLettered' ? 'dead_lettered' : event }, value: q[event] })),
        ),
      ),
    );

    const restarts = options.supervisorRestarts;
    if (restarts) {
      customMetric(this.registry, 'cinder_supervisor_restarts_total', 'Restarts of the serving process by its supervisor, by reason (exit: it died; hang: its heartbeat stopped).', 'counter', () =>
        Object.entries(restarts).map(([reason, value]) => ({ labels: { reason }, value })),
      );
    }

    const share = runtime.share;
    if (share) {
      customMetric(this.registry, 'cinder_serving_share_deferred_total', "Entries (requests, service calls, events) of a worker over its share of the saturated serving thread, started later than asked (serving-share.ts).", 'counter', () =>
        share.counts().map(({ worker, deferred }) => ({ labels: { worker }, value: deferred })),
      );
      customMetric(this.registry, 'cinder_serving_share_refused_total', 'Entries of a worker refused with a 503 because too many of its deferred entries were waiting already.', 'counter', () =>
        share.counts().map(({ worker, overflowed }) => ({ labels: { worker }, value: overflowed })),
      );
      customMetric(this.registry, 'cinder_serving_share_deferred_by_account_total', "Of a worker's deferred entries, those its account's share of the serving thread held back (the worker itself within its own share).", 'counter', () =>
        share.counts().map(({ worker, byAccount }) => ({ labels: { worker }, value: byAccount })),
      );
    }

    const background = runtime.background;
    if (background) {
      customMetric(this.registry, 'cinder_background_workers', 'Workers whose isolates run in the background class of isolate threads now: they breached their CPU limit and have not been calm since (background-class.ts).', 'gauge', () => [
        { labels: {}, value: background.count() },
      ]);
      customMetric(this.registry, 'cinder_background_moves_total', 'Times a worker was moved to the background class of isolate threads (a CPU-limit breach while it was not there).', 'counter', () =>
        background.counts().map(({ worker, moves }) => ({ labels: { worker }, value: moves })),
      );
    }

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
      name: 'cinder_durable_objects_live',
      help: 'Durable Objects live now, each in an isolate of its own (idle and hibernated objects are evicted).',
      registers,
      collect() {
        this.set(runtime.liveObjects?.() ?? 0);
      },
    });
    new Gauge({
      name: 'cinder_isolates_awaiting_dispose',
      help: 'Retired isolates (evicted, redeployed) whose memory is freed at the next quiet moment.',
      registers,
      collect() {
        this.set(runtime.isolatesAwaitingDispose());
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
      // every serving process of a node serves every worker: the node has as many as one has
      aggregator: 'max',
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
      const kv = this.seriesOf(worker).kv;
      const key = `${op}\0${namespace}`;
      kv.set(key, (kv.get(key) ?? 0) + 1);
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
    gauge('cinder_pool_building_isolates', 'Isolates being built for the pool now (on isolated-vm\'s threads).', () => fresh().building);
    gauge('cinder_pool_cold_start_rate', 'Cold starts per second the pool sizes itself from (exponentially weighted).', () => fresh().ratePerSecond);
    gauge('cinder_pool_refill_seconds', 'How long building and warming one pooled isolate takes (exponentially weighted).', () => fresh().refillMs / 1000);
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

  private seriesOf(worker: string): WorkerSeries {
    let series = this.series.get(worker);
    if (!series) {
      series = { outcomes: new Map(), scheduled: new Map(), cpu: new Buckets(CPU_BUCKETS), wall: new Buckets(WALL_BUCKETS), subrequests: 0, bytesIn: 0, bytesOut: 0, kv: new Map() };
      this.series.set(worker, series);
    }
    return series;
  }

  /** One invocation (Runtime.onInvocation): the request path, so plain additions only. */
  record(record: InvocationRecord): void {
    const series = this.seriesOf(record.worker);
    const byOutcome = record.kind === 'scheduled' ? series.scheduled : series.outcomes;
    byOutcome.set(record.outcome, (byOutcome.get(record.outcome) ?? 0) + 1);
    series.cpu.observe(record.cpuMs / 1000);
    series.wall.observe(record.wallMs / 1000);
    series.subrequests += record.subrequests;
    series.bytesIn += record.bytesIn;
    series.bytesOut += record.bytesOut;
  }

  /** A cron run that never became an invocation (skipped, worker gone). */
  recordCronRun(run: CronRun): void {
    if (run.outcome !== 'skipped' && run.outcome !== 'unavailable') return;
    const scheduled = this.seriesOf(run.worker).scheduled;
    scheduled.set(run.outcome, (scheduled.get(run.outcome) ?? 0) + 1);
  }

  /** Drop a deleted worker's series. */
  forget(worker: string): void {
    this.series.delete(worker);
    this.coldStarts.remove(worker);
  }

  /** This process's metrics as JSON (what another process of the node sums into its scrape). */
  json(): Promise<MetricsJSON> {
    return this.registry.getMetricsAsJSON() as Promise<MetricsJSON>;
  }

  /** The exposition text and its content type: the whole node's when there are other processes. */
  async render(): Promise<{ contentType: string; body: string }> {
    if (!this.gather) return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    const [local, others] = await Promise.all([this.json(), this.gather().catch(() => [] as MetricsJSON[])]);
    const summed = AggregatorRegistry.aggregate([local, ...others] as Parameters<typeof AggregatorRegistry.aggregate>[0]);
    return { contentType: this.registry.contentType, body: await summed.metrics() };
  }

  close(): void {
    setKvOperationSink(this.runtime, null);
    this.registry.clear();
  }
}
