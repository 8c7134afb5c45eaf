// Queues on real Redis (Redis Streams with a consumer group) with two Cinder nodes consuming the
// same queue: every message is processed exactly once across the two, and a consumer that keeps
// failing (on both nodes) sends each message to the dead-letter queue after max_retries retries
// in total, where it is buried once. The same on a real three-master Redis Cluster, where the
// dead-letter move crosses slots.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { installQueueProducers, QueueConsumers, RedisQueueBackend } from '../../bindings/queues/index.js';
import { findRedisServer, startRedis, startRedisCluster } from '../kv/fixtures.js';

const redisBinary = findRedisServer();
const errors: string[] = [];

interface Node {
  server: TestServer;
  backend: RedisQueueBackend;
  consumers: QueueConsumers;
}

const consumerCode = `export default {
  async queue(batch) {
    for (const m of batch.messages) {
      if (batch.queue === 'orders') {
        await new Promise((resolve) => setTimeout(resolve, 5));
        console.log('order ' + m.body.n);
      } else if (batch.queue === 'fragile') {
        console.log('try ' + m.body.n + ' ' + m.attempts);
      } else {
        console.log('buried ' + m.body.n);
      }
    }
    if (batch.queue === 'fragile') throw new Error('always failing');
  },
};`;

describe.skipIf(!redisBinary).each(['one Redis server', 'a Redis Cluster'])('Queues on %s with two nodes', (kind) => {
  let redis: { url: string; stop(): Promise<void> };
  const nodes: Node[] = [];

  beforeAll(async () => {
    redis = kind === 'a Redis Cluster' ? await startRedisCluster(redisBinary!) : await startRedis(redisBinary!);
    for (const name of ['node-a', 'node-b']) {
      const server = await startTestServer({});
      const backend = new RedisQueueBackend({ url: redis.url, consumer: name });
      const consumers = new QueueConsumers({ store: backend, dispatch: (worker, queue, messages) => server.runtime.queue(worker, queue, messages), pollMs: 20, onError: (error) => errors.push(String((error as Error)?.stack ?? error)) });
      installQueueProducers(server.runtime, backend, (ref) => consumers.wake(ref));
      server.deploy('producer', {
        code: `export default { async fetch(request, env) { const url = new URL(request.url); const to = url.searchParams.get('to'); const from = Number(url.searchParams.get('from')); const count = Number(url.searchParams.get('count'));
          const queue = to === 'fragile' ? env.FRAGILE : env.ORDERS;
          await queue.sendBatch(Array.from({ length: count }, (_, i) => ({ body: { n: from + i }, contentType: 'json' })));
          return new Response('ok'); } };`,
        bindings: { ORDERS: { type: 'queue', queue_name: 'orders' }, FRAGILE: { type: 'queue', queue_name: 'fragile' } },
      });
      server.deploy('consumer', { code: consumerCode });
      consumers.set('consumer', 'default', [
        { queue: 'orders', maxBatchSize: 5, maxBatchTimeout: 0 },
        { queue: 'fragile', maxBatchSize: 10, maxBatchTimeout: 0, maxRetries: 2, retryDelay: 0, deadLetterQueue: 'fragile-dlq' },
        { queue: 'fragile-dlq', maxBatchSize: 10, maxBatchTimeout: 0 },
      ]);
      nodes.push({ server, backend, consumers });
    }
  }, 60_000);
  afterAll(async () => {
    for (const node of nodes) {
      await node.consumers.close();
      await node.server.close();
      await node.backend.close();
    }
    await redis?.stop();
  });

  const lines = (node: Node, prefix: string) => node.server.logs.filter((l) => l.console === 'log' && String(l.msg).startsWith(prefix)).map((l) => String(l.msg));

  it('processes each message once across the two nodes', async () => {
    // Sent through both nodes.
    expect((await nodes[0].server.request('producer', '/?to=orders&from=0&count=50')).status).toBe(200);
    expect((await nodes[1].server.request('producer', '/?to=orders&from=50&count=50')).status).toBe(200);
    await vi.waitFor(() => expect(lines(nodes[0], 'order ').length + lines(nodes[1], 'order ').length, errors.slice(0, 2).join('\n')).toBeGreaterThanOrEqual(100), { timeout: 20_000 });
    const all = [...lines(nodes[0], 'order '), ...lines(nodes[1], 'order ')].map((l) => Number(l.split(' ')[1])).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 100 }, (_, i) => i));
    // Both nodes took part (each batch went to one of them).
    expect(lines(nodes[0], 'order ').length).toBeGreaterThan(0);
    expect(lines(nodes[1], 'order ').length).toBeGreaterThan(0);
    await vi.waitFor(async () => expect(await nodes[0].backend.depth({ account: 'default', queue: 'orders' })).toBe(0));
  });

  it('sends an always-failing consumer\'s messages to the dead-letter queue after max_retries, once', async () => {
    expect((await nodes[0].server.request('producer', '/?to=fragile&from=1&count=3')).status).toBe(200);
    await vi.waitFor(() => expect(lines(nodes[0], 'buried ').length + lines(nodes[1], 'buried ').length).toBe(3), { timeout: 20_000 });
    const tries = [...lines(nodes[0], 'try '), ...lines(nodes[1], 'try ')].sort();
    expect(tries).toEqual(['try 1 1', 'try 1 2', 'try 1 3', 'try 2 1', 'try 2 2', 'try 2 3', 'try 3 1', 'try 3 2', 'try 3 3']);
    expect([...lines(nodes[0], 'buried '), ...lines(nodes[1], 'buried ')].sort()).toEqual(['buried 1', 'buried 2', 'buried 3']);
    await vi.waitFor(async () => expect(await nodes[1].backend.depth({ account: 'default', queue: 'fragile-dlq' })).toBe(0));
    expect(await nodes[1].backend.depth({ account: 'default', queue: 'fragile' })).toBe(0);
  });
});
