// Issue 22: every kind of entry takes its turn on the serving thread (src/runtime/serving-share.ts),
// not only requests: a Durable Object's events, WebSocket messages (a plain socket's and a
// hibernatable one's), cron events and queue batches are deferred while their worker is over its
// share of a saturated thread, and deferral keeps every ordering guarantee and drops nothing.
// Through a real `cinder serve` whose share holds the worker as over its share always (a test
// seam; saturation 0 and no in-flight floor), so every one of its entries is deferred whatever
// this machine's speed. Counts and orders only, no timings.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';
import { connect } from '../websocket/helpers.js';

const WORKER = 'ordered';

const CODE = `
import { DurableObject } from 'cloudflare:workers';

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const log = env.LOG.getByName(url.searchParams.get('log') ?? 'one');
    if (request.headers.get('Upgrade') === 'websocket') {
      if (url.pathname !== '/plain') return log.fetch(request);
      // a socket of the worker itself: each message answered with its place in the order seen
      const pair = new WebSocketPair();
      pair[1].accept();
      let seen = 0;
      pair[1].addEventListener('message', (event) => pair[1].send(seen++ + ':' + event.data));
      return new Response(null, { status: 101, webSocket: pair[0] });
    }
    if (url.pathname === '/send') {
      // n events to one object at once, sent in order
      const n = Number(url.searchParams.get('n'));
      const answers = await Promise.all(Array.from({ length: n }, (_, i) => log.fetch('https://log/append?i=' + i).then((r) => r.text())));
      return Response.json(answers);
    }
    return log.fetch('https://log' + url.pathname);
  },
  async scheduled(event, env) {
    await env.LOG.getByName('cron').fetch('https://log/append?i=1');
  },
  async queue(batch, env) {
    for (const message of batch.messages) {
      await env.LOG.getByName('queue').fetch('https://log/append?i=' + message.body);
      message.ack();
    }
  },
};

export class Log extends DurableObject {
  seen = [];
  async fetch(request) {
    const url = new URL(request.url);
    if (request.headers.get('Upgrade') === 'websocket') {
      const pair = new WebSocketPair();
      this.ctx.acceptWebSocket(pair[1]);
      return new Response(null, { status: 101, webSocket: pair[0] });
    }
    if (url.pathname === '/append') {
      this.seen.push(Number(url.searchParams.get('i')));
      return new Response(String(this.seen.length));
    }
    if (url.pathname === '/seen') return Response.json(this.seen);
    return new Response('not found', { status: 404 });
  }
  async webSocketMessage(ws, message) {
    ws.send('echo:' + message);
  }
}
`;

let cinder: TestCinder;

/** Entries of the worker deferred so far. */
function deferred(): number {
  return cinder.server.runtime.share.counts().find((c) => c.worker === WORKER)?.deferred ?? 0;
}

beforeAll(async () => {
  cinder = await startCinder({
    runtime: { pool: { min: 2 }, servingShare: { saturation: 0, minInFlight: 0, limitedFor: (worker) => worker === WORKER } },
  });
  const res = await cinder.admin('PUT', `/workers/${WORKER}`, {
    body: multipart(
      {
        main_module: 'index.js',
        bindings: [{ type: 'durable_object_namespace', name: 'LOG', class_name: 'Log' }],
        migrations: { new_tag: 'v1', new_sqlite_classes: ['Log'] },
        limits: { cpu_ms: 1000 },
      },
      { 'index.js': CODE },
    ),
  });
  expect(res.status, res.text).toBe(201);
}, 60_000);

afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('events deferred by the serving-thread share keep their order and complete', () => {
  it("a Durable Object's events, sent at once, are all deferred and reach it in the order sent", async () => {
    const before = deferred();
    const res = await cinder.get(`${WORKER}.test`, '/send?n=30&log=fetches');
    expect(res.status, res.text).toBe(200);
    expect(JSON.parse(res.text)).toEqual(Array.from({ length: 30 }, (_, i) => String(i + 1)));
    const seen = await cinder.get(`${WORKER}.test`, '/seen?log=fetches');
    expect(JSON.parse(seen.text)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // the request and each of its 30 events (one request may invoke at most 32 workers), and the
    // two of /seen
    expect(deferred() - before).toBeGreaterThanOrEqual(33);
    expect(cinder.server.runtime.share.waitingEntries).toBe(0);
  }, 120_000);

  it("a worker's own WebSocket: every message deferred, each answered, in the order sent", async () => {
    const client = await connect(cinder.server.port, WORKER, '/plain');
    const before = deferred();
    const sent = Array.from({ length: 60 }, (_, i) => `m${i}`);
    for (const message of sent) client.send(message);
    const replies = await client.received(60);
    expect(replies.map(String)).toEqual(sent.map((m, i) => `${i}:${m}`));
    expect(deferred() - before).toBeGreaterThanOrEqual(60);
    client.ws.close();
    await client.closed;
  }, 120_000);

  it("a Durable Object's hibernatable WebSocket: every message deferred, each answered, in the order sent", async () => {
    const client = await connect(cinder.server.port, WORKER, '/?log=sockets');
    const before = deferred();
    const sent = Array.from({ length: 60 }, (_, i) => `h${i}`);
    for (const message of sent) client.send(message);
    const replies = await client.received(60);
    expect(replies.map(String)).toEqual(sent.map((m) => `echo:${m}`));
    expect(deferred() - before).toBeGreaterThanOrEqual(60);
    client.ws.close();
    await client.closed;
  }, 120_000);

  it('a cron event and a queue batch are deferred, run, and reach the object', async () => {
    const runtime = cinder.server.runtime;
    const before = deferred();
    const cron = await runtime.scheduled(WORKER, '*/5 * * * *');
    expect(cron.outcome, cron.error).toBe('ok');
    const batch = await runtime.queue(WORKER, 'jobs', [1, 2, 3].map((n) => ({ id: `m${n}`, timestamp: Date.now(), body: n, attempts: 1 })));
    expect(batch.outcome, batch.error).toBe('ok');
    expect(JSON.parse((await cinder.get(`${WORKER}.test`, '/seen?log=cron')).text)).toEqual([1]);
    expect(JSON.parse((await cinder.get(`${WORKER}.test`, '/seen?log=queue')).text)).toEqual([1, 2, 3]);
    // the cron event and its object event, the batch and its three object events
    expect(deferred() - before).toBeGreaterThanOrEqual(6);
    expect(runtime.share.waitingEntries).toBe(0);
  }, 120_000);
});

describe('an event past the full queue of its worker is refused with the error a request gets, by name', () => {
  let full: TestCinder;

  beforeAll(async () => {
    // every entry of "ordered" is deferred and its queue holds none: each is refused
    full = await startCinder({
      runtime: { pool: { min: 2 }, servingShare: { saturation: 0, minInFlight: 0, maxQueue: 0, limitedFor: (worker) => worker === WORKER } },
    });
    const deploy = async (name: string, code: string, bindings: unknown[], migrations?: unknown) => {
      const res = await full.admin('PUT', `/workers/${name}`, { body: multipart({ main_module: 'index.js', bindings, ...(migrations ? { migrations } : {}), limits: { cpu_ms: 1000 } }, { 'index.js': code }) });
      expect(res.status, res.text).toBe(201);
    };
    await deploy(WORKER, CODE, [{ type: 'durable_object_namespace', name: 'LOG', class_name: 'Log' }], { new_tag: 'v1', new_sqlite_classes: ['Log'] });
    // a worker the share leaves alone, calling the object of "ordered"
    await deploy(
      'front',
      `export default { async fetch(request, env) {
        try { return await env.LOG.getByName('one').fetch('https://log/seen'); } catch (error) { return new Response('caught: ' + error.message, { status: 502 }); }
      } };`,
      [{ type: 'durable_object_namespace', name: 'LOG', class_name: 'Log', script_name: WORKER }],
    );
  }, 60_000);

  afterAll(async () => {
    await full?.close({ cleanup: true });
  });

  it("a request, an object's event, a cron event and a queue batch: each refused naming the worker, none run", async () => {
    const refusal = `worker "${WORKER}" is over its share of the serving thread and has 0 requests waiting already`;
    const request = await full.get(`${WORKER}.test`, '/seen');
    expect(request.status).toBe(503);
    const event = await full.get('front.test', '/');
    expect(event.status).toBe(502);
    expect(event.text).toContain(refusal);
    const runtime = full.server.runtime;
    const cron = await runtime.scheduled(WORKER, '*/5 * * * *');
    expect(cron.outcome).toBe('exception');
    expect(cron.error).toBe(refusal);
    const batch = await runtime.queue(WORKER, 'jobs', [{ id: 'm1', timestamp: Date.now(), body: 1, attempts: 1 }]);
    expect(batch.outcome).toBe('exception');
    expect(batch.error).toBe(refusal);
    expect(runtime.share.counts().find((c) => c.worker === WORKER)?.overflowed).toBe(4);
    // nothing of "ordered" ran: no object was made
    expect(runtime.liveObjects()).toBe(0);
  }, 120_000);
});
