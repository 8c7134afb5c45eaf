// Counters that binding code (KV today) increments without knowing about metrics: the metrics of a
// runtime register a sink here, keyed by the runtime object; binding code counts through the same
// object it registers its ops on. Kept free of prom-client so `cinder kv` does not load it.
import type { OpRegistry } from '../runtime/contract.js';

export type OperationSink = (worker: string, op: string, namespace: string | undefined) => void;

const kvSinks = new WeakMap<object, OperationSink>();

/** Where `runtime`'s KV operations are counted (Metrics calls this); null stops counting. */
export function setKvOperationSink(runtime: object, sink: OperationSink | null): void {
  if (sink) kvSinks.set(runtime, sink);
  else kvSinks.delete(runtime);
}

/** Count one KV operation (`op` like "get", "put") made by `worker` through `runtime`. */
export function countKvOperation(runtime: object, worker: string, op: string, namespace?: string): void {
  kvSinks.get(runtime)?.(worker, op, namespace);
}

/**
 * `runtime` with registerOp wrapped so that every call of a registered "kv.<op>" handler is
 * counted as a KV operation of the calling worker on the bound namespace (cinder_kv_operations_total).
 */
export function countingKvOps<T extends OpRegistry>(runtime: T): OpRegistry {
  return {
    registerOp(op, handler) {
      const name = op.startsWith('kv.') ? op.slice(3) : op;
      runtime.registerOp(op, (call, args) => {
        if (kvSinks.has(runtime)) {
          const binding = typeof args[0] === 'string' ? call.binding(args[0]) : undefined;
          countKvOperation(runtime, call.worker.name, name, binding?.type === 'kv_namespace' ? binding.namespace_id : undefined);
        }
        return handler(call, args);
      });
    },
  };
}

/** One queue as /metrics shows it: its depth and what its consumers did with its messages. */
export interface QueueMetricRow {
  account: string;
  queue: string;
  depth: number;
  delivered: number;
  acked: number;
  retried: number;
  deadLettered: number;
  dropped: number;
}

const queueSources = new WeakMap<object, () => Promise<QueueMetricRow[]>>();

/** Where `runtime`'s queue figures come from (the Queues binding sets it); null stops it. */
export function setQueueMetricsSource(runtime: object, source: (() => Promise<QueueMetricRow[]>) | null): void {
  if (source) queueSources.set(runtime, source);
  else queueSources.delete(runtime);
}

/** The queue figures of `runtime` now (empty when it has no queues). */
export async function queueMetricsOf(runtime: object): Promise<QueueMetricRow[]> {
  return (await queueSources.get(runtime)?.()) ?? [];
}
