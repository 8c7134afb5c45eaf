// Queues on the embedded store, in real workers: a producer's send/sendBatch (content types,
// delays) reaches a consumer's queue() handler in batches; per-message and per-batch ack/retry
// are applied; a consumer that keeps failing sends its messages to the dead-letter queue after
// the configured retries, where a second consumer gets them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { installQueueProducers, QueueConsumers, QueueStore } from '../../bindings/queues/index.js';
import { QUEUE_OPS } from '../../protocol/wall.js';

let server: TestServer;
let store: QueueStore;
let consumers: QueueConsumers;
let dir: string;

const consoleLines = (worker: string) => server.logs.filter((l) => l.console === 'log' && l.worker === worker).map((l) => String(l.msg));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cinder-queues-'));
  server = await startTestServer({});
  store = new QueueStore(join(dir, 'queues.sqlite'));
  consumers = new QueueConsumers({ store, dispatch: (worker, queue, messages) => server.runtime.queue(worker, queue, messages), pollMs: 20 });
  installQueueProducers(server.runtime, store, (ref) => consumers.wake(ref));
  server.deploy('producer', {
    code: `export default {
      async fetch(request, env) {
        const url = new URL(request.url);
        const queue = url.searchParams.get('to') === 'flaky' ? env.FLAKY : env.JOBS;
        const bodies = JSON.parse(await request.text());
        if (bodies.length === 1) await queue.send(bodies[0], { contentType: url.searchParams.get('type') ?? undefined });
        else await queue.sendBatch(bodies.map((body) => ({ body })));
        return new Response('sent ' + bodies.length);
      },
    };`,
    bindings: { JOBS: { type: 'queue', queue_name: 'jobs' }, FLAKY: { type: 'queue', queue_name: 'flaky' } },
  });
});
afterAll(async () => {
  await consumers.close();
  await server.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Queues', () => {
  it('delivers sent messages to the consumer in batches, bodies as sent', async () => {
    server.deploy('worker', {
      code: `export default {
        async queue(batch, env) {
          console.log('batch ' + batch.queue + ' ' + batch.messages.length);
          for (const m of batch.messages) console.log('got ' + JSON.stringify(m.body) + ' attempt ' + m.attempts + ' ' + (m.timestamp instanceof Date) + ' ' + typeof m.id);
        },
      };`,
    });
    consumers.set('worker', 'default', [{ queue: 'jobs', maxBatchSize: 5, maxBatchTimeout: 1 }]);
    const sent = await server.request('producer', '/', { method: 'POST', body: JSON.stringify([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }, { n: 6 }]) });
    expect(sent.text).toBe('sent 6');
    await server.request('producer', '/?type=text', { method: 'POST', body: JSON.stringify(['plain text']) });
    await vi.waitFor(() => expect(consoleLines('worker').filter((l) => l.startsWith('got '))).toHaveLength(7), { timeout: 10_000 });
    const lines = consoleLines('worker');
    expect(lines.filter((l) => l.startsWith('got ')).sort()).toEqual([...[1, 2, 3, 4, 5, 6].map((n) => `got {"n":${n}} attempt 1 true string`), 'got "plain text" attempt 1 true string'].sort());
    // the first five together (max_batch_size), the rest after the batch timeout
    expect(lines[0]).toBe('batch jobs 5');
    expect(await store.depth({ account: 'default', queue: 'jobs' })).toBe(0);
    consumers.remove('worker');
  });

  it('applies per-message ack and retry, with the retried message delivered again', async () => {
    server.deploy('picky', {
      code: `export default {
        async queue(batch) {
          for (const m of batch.messages) {
            console.log('saw ' + m.body.n + ' attempt ' + m.attempts);
            if (m.body.n === 2 && m.attempts === 1) m.retry({ delaySeconds: 0 });
            else m.ack();
          }
        },
      };`,
    });
    consumers.set('picky', 'default', [{ queue: 'jobs', maxBatchSize: 3, maxBatchTimeout: 0 }]);
    await server.request('producer', '/', { method: 'POST', body: JSON.stringify([{ n: 1 }, { n: 2 }, { n: 3 }]) });
    await vi.waitFor(() => expect(consoleLines('picky')).toContain('saw 2 attempt 2'), { timeout: 10_000 });
    expect(consoleLines('picky').sort()).toEqual(['saw 1 attempt 1', 'saw 2 attempt 1', 'saw 2 attempt 2', 'saw 3 attempt 1']);
    await vi.waitFor(async () => expect(await store.depth({ account: 'default', queue: 'jobs' })).toBe(0));
    consumers.remove('picky');
  });

  it('sends the messages of a consumer that keeps throwing to the dead-letter queue after max_retries', async () => {
    server.deploy('broken', { code: `export default { async queue(batch) { for (const m of batch.messages) console.log('try ' + m.body.n + ' ' + m.attempts); throw new Error('consumer down'); } };` });
    server.deploy('graveyard', { code: `export default { async queue(batch) { for (const m of batch.messages) console.log('dead ' + m.body.n + ' ' + m.attempts); } };` });
    consumers.set('broken', 'default', [{ queue: 'flaky', maxBatchSize: 10, maxBatchTimeout: 0, maxRetries: 2, retryDelay: 0, deadLetterQueue: 'flaky-dlq' }]);
    consumers.set('graveyard', 'default', [{ queue: 'flaky-dlq', maxBatchSize: 10, maxBatchTimeout: 0 }]);
    await server.request('producer', '/?to=flaky', { method: 'POST', body: JSON.stringify([{ n: 7 }, { n: 8 }]) });
    await vi.waitFor(() => expect(consoleLines('graveyard')).toHaveLength(2), { timeout: 15_000 });
    expect(consoleLines('broken').sort()).toEqual(['try 7 1', 'try 7 2', 'try 7 3', 'try 8 1', 'try 8 2', 'try 8 3']);
    expect(consoleLines('graveyard').sort()).toEqual(['dead 7 1', 'dead 8 1']);
    const stats = consumers.statsOf('default', 'flaky');
    expect(stats).toMatchObject({ delivered: 6, acked: 0, retried: 4, deadLettered: 2 });
    await vi.waitFor(async () => expect(await store.depth({ account: 'default', queue: 'flaky-dlq' })).toBe(0));
    expect(await store.depth({ account: 'default', queue: 'flaky' })).toBe(0);
  });

  it('checks what a producer sends: content types, sizes, batch limits, and the binding', async () => {
    server.deploy('checks', {
      code: `export default {
        async fetch(request, env) {
          const out = [];
          for (const attempt of [
            () => env.Q.send('x', { contentType: 'xml' }),
            () => env.Q.send(5, { contentType: 'text' }),
            () => env.Q.send('x'.repeat(200 * 1024), { contentType: 'text' }),
            () => env.Q.sendBatch(Array.from({ length: 101 }, (_, i) => ({ body: i }))),
            () => env.Q.send({ f() {} }),
            () => env.Q.send('later', { delaySeconds: 50000 }),
          ]) {
            try { await attempt(); out.push('sent'); } catch (e) { out.push(e.name + ': ' + e.message); }
          }
          return Response.json(out);
        },
      };`,
      bindings: { Q: { type: 'queue', queue_name: 'checked' } },
    });
    const out = JSON.parse((await server.request('checks', '/')).text);
    expect(out[0]).toBe('TypeError: Unknown content type "xml"; use "json", "text", "bytes" or "v8"');
    expect(out[1]).toBe('TypeError: A "text" message body must be a string');
    expect(out[2]).toBe('Error: Queue send failed: message length of 204800 bytes exceeds limit of 131072');
    expect(out[3]).toBe('Error: Queue sendBatch failed: batch has 101 messages, more than 100');
    expect(out[4]).toMatch(/^(DataCloneError|Error|TypeError): /);
    expect(out[5]).toBe('RangeError: delaySeconds must be from 0 to 43200');
    const def = server.runtime.definition('checks')!;
    const asForger = { worker: def, invocation: undefined, binding: (name: string) => def.bindings[name] };
    await expect(server.runtime.ops.get(QUEUE_OPS.send)!(asForger as never, ['OTHER', [{ body: 'x', contentType: 'text' }]])).rejects.toThrow(/not a queue bound to this worker/);
    expect(await store.depth({ account: 'default', queue: 'checked' })).toBe(0);
  });
});
