// Queues in `cinder serve`: producer ops for workers' queue bindings, consumers for the queues each
// worker's live version consumes (kept in step with deploys, rollbacks and deletes), on the
// message store <data>/queues.sqlite; depth and message counts on /metrics.
import { join } from 'node:path';
import { consumerConfig, installQueueProducers, QueueConsumers, QueueStore, RedisQueueBackend, type QueueBackend } from '../../bindings/queues/index.js';
import { setQueueMetricsSource } from '../observability/counters.js';
import type { ServeExtension } from './serve.js';

export interface QueuesServeOptions {
  /** Redis URL (`cinder serve --redis`): queues on Redis Streams shared by every node */
  redis?: string;
  /** how often consumers look at their queues (ms, default 100) */
  pollMs?: number;
}

export function queuesServeExtension(options: QueuesServeOptions = {}): ServeExtension & { consumers(): QueueConsumers | null; store(): QueueBackend | null } {
  let consumers: QueueConsumers | null = null;
  let store: QueueBackend | null = null;
  return {
    name: 'queues',
    consumers: () => consumers,
    store: () => store,
    setup({ runtime, deployments, dataDir, logger }) {
      const messages: QueueBackend = options.redis ? new RedisQueueBackend({ url: options.redis }) : new QueueStore(join(dataDir, 'queues.sqlite'));
      store = messages;
      const active = new QueueConsumers({
        store: messages,
        dispatch: (worker, queue, batch) => runtime.queue(worker, queue, batch),
        pollMs: options.pollMs,
        onError: (error, where) => logger.error({ worker: where.worker, queue: where.queue, err: String(error) }, 'queue consumer failed'),
      });
      consumers = active;
      installQueueProducers(runtime, messages, (ref) => active.wake(ref));
      deployments.onChange((event) => {
        if (event.type === 'deleted') {
          active.remove(event.worker);
        } else if (event.type === 'deployed') {
          const account = runtime.definition(event.worker)?.account ?? 'default';
          active.set(event.worker, account, (event.version.queueConsumers ?? []).map(consumerConfig));
        }
      });
      setQueueMetricsSource(runtime, async () => {
        const rows = new Map((await messages.depths()).map((d) => [`${d.account}\0${d.queue}`, { account: d.account, queue: d.queue, depth: d.depth }]));
        for (const key of active.stats.keys()) if (!rows.has(key)) rows.set(key, { account: key.split('\0')[0], queue: key.split('\0')[1], depth: 0 });
        return [...rows.values()].map((row) => ({ ...row, ...active.statsOf(row.account, row.queue) }));
      });
      logger.info(`Queues in ${options.redis ? 'Redis Streams' : `${dataDir}/queues.sqlite`}`);
      return {
        async close() {
          setQueueMetricsSource(runtime, null);
          await active.close();
          await messages.close();
        },
      };
    },
  };
}
