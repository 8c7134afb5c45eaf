// Queues on `cinder serve`, configured as a user deploys them: producer bindings and
// queue_consumers in the upload metadata (what `cinder deploy` sends for wrangler's queues
// table). A consumer that always throws sends its messages to the dead-letter queue after
// max_retries; /metrics shows depth and deliveries; accounts using the same queue name are apart.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';
import { makeTenant, type Tenant } from '../security/tenants.js';
import { queuesServeExtension } from '../../src/app/queues.js';
import { configMetadata, readConfig } from '../../src/app/cli/wrangler.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let cinder: TestCinder;
let good: Tenant;
let evil: Tenant;
const logsOf = (worker: string) => cinder.logs.filter((l) => l.console === 'log' && l.worker === worker).map((l) => String(l.msg));

const producer = `export default { async fetch(request, env) { const n = Number(new URL(request.url).searchParams.get('n')); await env.JOBS.send({ n }, { contentType: 'json' }); return new Response('queued ' + n); } };`;

beforeAll(async () => {
  cinder = await startCinder({ extensions: [queuesServeExtension({ pollMs: 20 })] });
  good = await makeTenant(cinder, 'good');
  evil = await makeTenant(cinder, 'evil');
});
afterAll(() => cinder?.close({ cleanup: true }));

describe('Queues on cinder serve', () => {
  it('reads wrangler queues into bindings and consumer metadata', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cinder-queue-config-'));
    writeFileSync(join(dir, 'wrangler.toml'), 'name = "q"\nmain = "x.js"\n[[queues.producers]]\nbinding = "JOBS"\nqueue = "jobs"\n[[queues.consumers]]\nqueue = "jobs"\nmax_batch_size = 5\nmax_retries = 2\ndead_letter_queue = "jobs-dlq"\n');
    const metadata = configMetadata(readConfig(join(dir, 'wrangler.toml')));
    expect(metadata.bindings).toEqual([{ type: 'queue', name: 'JOBS', queue_name: 'jobs' }]);
    expect(metadata.queue_consumers).toEqual([{ queue: 'jobs', max_batch_size: 5, max_retries: 2, dead_letter_queue: 'jobs-dlq' }]);
    writeFileSync(join(dir, 'wrangler.toml'), 'name = "q"\nmain = "x.js"\n[[queues.consumers]]\nqueue = "jobs"\nmax_batch_size = 500\n');
    expect(() => readConfig(join(dir, 'wrangler.toml'))).toThrow(/queues\.consumers\[0\]\.max_batch_size: must be an integer from 1 to 100/);
  });

  it('sends a failing consumer\'s messages to the dead-letter queue after max_retries, and counts it all on /metrics', async () => {
    const consumer = `export default { async queue(batch) { for (const m of batch.messages) console.log('attempt ' + m.body.n + ' ' + m.attempts); throw new Error('down'); } };`;
    const dlq = `export default { async queue(batch) { for (const m of batch.messages) console.log('buried ' + m.body.n); } };`;
    expect((await good.deploy('producer', producer, { bindings: [{ type: 'queue', name: 'JOBS', queue_name: 'jobs' }] })).status).toBe(201);
    expect((await good.deploy('consumer', consumer, { queue_consumers: [{ queue: 'jobs', max_batch_size: 10, max_batch_timeout: 0, max_retries: 2, retry_delay: 0, dead_letter_queue: 'jobs-dlq' }] })).status).toBe(201);
    expect((await good.deploy('dlq', dlq, { queue_consumers: [{ queue: 'jobs-dlq', max_batch_timeout: 0 }] })).status).toBe(201);
    for (const n of [1, 2]) expect((await cinder.get('producer.example.com', `/?n=${n}`)).text).toBe(`queued ${n}`);
    await vi.waitFor(() => expect(logsOf('dlq').sort()).toEqual(['buried 1', 'buried 2']), { timeout: 15_000 });
    expect(logsOf('consumer').sort()).toEqual(['attempt 1 1', 'attempt 1 2', 'attempt 1 3', 'attempt 2 1', 'attempt 2 2', 'attempt 2 3']);
    const metrics = (await cinder.admin('GET', '/metrics')).text;
    // Every series carries the node label (cinder serve --node-id).
    const series = (name: string, labels: string, value: number) => new RegExp(`${name}\\{${labels},node="[^"]+"\\} ${value}\n`);
    expect(metrics).toMatch(series('cinder_queue_messages_total', `account="${good.id}",queue="jobs",event="delivered"`, 6));
    expect(metrics).toMatch(series('cinder_queue_messages_total', `account="${good.id}",queue="jobs",event="dead_lettered"`, 2));
    expect(metrics).toMatch(series('cinder_queue_messages_total', `account="${good.id}",queue="jobs-dlq",event="acked"`, 2));
    expect(metrics).toMatch(series('cinder_queue_depth', `account="${good.id}",queue="jobs"`, 0));
  });

  it('keeps queues of the same name apart between accounts', async () => {
    const spy = `export default { async queue(batch) { for (const m of batch.messages) console.log('stolen ' + m.body.n); } };`;
    expect((await evil.deploy('spy', spy, { queue_consumers: [{ queue: 'jobs', max_batch_timeout: 0 }] })).status).toBe(201);
    // good's consumer goes; a fresh one that acks everything takes its place
    expect((await good.deploy('consumer', `export default { async queue(batch) { for (const m of batch.messages) console.log('mine ' + m.body.n); } };`, { queue_consumers: [{ queue: 'jobs', max_batch_timeout: 0 }] })).status).toBe(201);
    await cinder.get('producer.example.com', '/?n=3');
    await vi.waitFor(() => expect(logsOf('consumer')).toContain('mine 3'), { timeout: 10_000 });
    expect(logsOf('spy')).toEqual([]);
  });

  it('refuses a consumer entry it does not understand, naming it', async () => {
    const bad = await good.deploy('bad', producer, { queue_consumers: [{ queue: 'jobs', max_wait: 3 }] });
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/metadata\.queue_consumers\[0\]\.max_wait: not a consumer setting Cinder knows/);
  });
});
