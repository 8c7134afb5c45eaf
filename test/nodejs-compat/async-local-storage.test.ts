// AsyncLocalStorage (node:async_hooks) on V8's continuation-preserved embedder data (isolated-vm
// patch 11): the store follows awaits, timers and fetch, stays apart between concurrent requests
// to one isolate, and hono/context-storage (a real middleware, bundled unchanged) works.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { bundleWorker } from './helpers.js';

let upstream: http.Server;
let upstreamUrl = '';
let server: TestServer;

// Each request carries an id; the worker reports what getStore() says at each step.
const stepsWorker = `import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
  const als = new AsyncLocalStorage();
  const other = new AsyncLocalStorage();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  export default { async fetch(request) {
    const id = new URL(request.url).searchParams.get('id');
    const delay = Number(new URL(request.url).searchParams.get('delay') ?? 0);
    const outside = als.getStore();
    return als.run({ id }, async () => {
      const seen = { outside: outside ?? null, start: als.getStore().id };
      await null;
      seen.afterAwait = als.getStore().id;
      await sleep(delay);
      seen.afterTimer = als.getStore().id;
      seen.inTimer = await new Promise((r) => setTimeout(() => r(als.getStore().id), 1));
      const res = await fetch(UPSTREAM + '/?id=' + id);
      seen.afterFetch = als.getStore().id + ':' + (await res.text());
      seen.inThen = await Promise.resolve().then(() => als.getStore().id);
      seen.microtask = await new Promise((r) => queueMicrotask(() => r(als.getStore().id)));
      seen.nested = other.run('inner', () => [als.getStore().id, other.getStore()]);
      seen.exited = als.exit(() => als.getStore() ?? null);
      const resource = als.run({ id: 'resource' }, () => new AsyncResource('x'));
      seen.resource = resource.runInAsyncScope(() => als.getStore().id);
      const snap = als.run({ id: 'snap' }, () => AsyncLocalStorage.snapshot());
      seen.snapshot = snap(() => als.getStore().id);
      const bound = als.run({ id: 'bound' }, () => AsyncLocalStorage.bind(() => als.getStore().id));
      seen.bound = bound();
      seen.after = als.getStore().id;
      return Response.json(seen);
    });
  } }`;

const honoWorker = `import { Hono } from 'hono';
  import { contextStorage, getContext } from 'hono/context-storage';
  const app = new Hono();
  app.use(contextStorage());
  app.use(async (c, next) => { c.set('user', c.req.query('user')); await next(); });
  // deep in "service code" that has no access to c: reads the request's context
  const whoAmI = () => getContext().var.user;
  app.get('/', async (c) => {
    await new Promise((r) => setTimeout(r, Number(c.req.query('delay') ?? 0)));
    const upstream = await fetch(UPSTREAM + '/');
    return c.json({ user: whoAmI(), upstream: await upstream.text() });
  });
  export default app;`;

beforeAll(async () => {
  upstream = http.createServer((req, res) => res.end('ok'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const withUpstream = (code: string) => code.replaceAll('UPSTREAM', JSON.stringify(upstreamUrl));
  const hono = await bundleWorker(withUpstream(honoWorker), import.meta.dirname);
  server = await startTestServer(
    {
      steps: { code: withUpstream(stepsWorker), compatibilityDate: '2025-05-01', compatibilityFlags: ['nodejs_compat'] },
      // nodejs_als alone: node:async_hooks without the rest of nodejs_compat
      als: { code: withUpstream(stepsWorker), compatibilityDate: '2024-01-01', compatibilityFlags: ['nodejs_als'] },
      hono: { code: hono, compatibilityDate: '2025-05-01', compatibilityFlags: ['nodejs_compat'] },
      alsonly: { code: `import { AsyncLocalStorage } from 'node:async_hooks'; export default { fetch() { return Response.json({ buffer: typeof Buffer, process: typeof process, als: typeof AsyncLocalStorage }) } }`, compatibilityFlags: ['nodejs_als'] },
    },
    { allowPrivateFetch: true },
  );
});
afterAll(async () => {
  await server.close();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

const expected = (id: string) => ({
  outside: null, start: id, afterAwait: id, afterTimer: id, inTimer: id, afterFetch: `${id}:ok`, inThen: id, microtask: id,
  nested: [id, 'inner'], exited: null, resource: 'resource', snapshot: 'snap', bound: 'bound', after: id,
});

describe('AsyncLocalStorage', () => {
  for (const worker of ['steps', 'als']) {
    it(`keeps the store across await, setTimeout, fetch, then and queueMicrotask (${worker === 'als' ? 'nodejs_als' : 'nodejs_compat'})`, async () => {
      const res = await server.request(worker, '/?id=one');
      expect(res.status, res.text).toBe(200);
      expect(JSON.parse(res.text)).toEqual(expected('one'));
    });
  }

  it('keeps concurrent requests in one isolate apart, whatever order their continuations run in', async () => {
    // The later-started requests finish first: their timers are shorter.
    const ids = Array.from({ length: 12 }, (_, i) => `r${i}`);
    const answers = await Promise.all(ids.map((id, i) => server.request('steps', `/?id=${id}&delay=${(ids.length - i) * 3}`)));
    for (const [i, res] of answers.entries()) {
      expect(res.status, res.text).toBe(200);
      expect(JSON.parse(res.text)).toEqual(expected(ids[i]));
    }
  });

  it('runs hono/context-storage unchanged: getContext() from service code after a timer and a fetch, per request', async () => {
    const users = ['ada', 'grace', 'linus', 'barbara', 'ken'];
    const answers = await Promise.all(users.map((user, i) => server.request('hono', `/?user=${user}&delay=${(users.length - i) * 4}`)));
    expect(answers.map((res) => JSON.parse(res.text))).toEqual(users.map((user) => ({ user, upstream: 'ok' })));
  });

  it('nodejs_als alone gives node:async_hooks without the Buffer and process globals', async () => {
    const res = await server.request('alsonly');
    expect(JSON.parse(res.text)).toEqual({ buffer: 'undefined', process: 'undefined', als: 'function' });
  });
});
