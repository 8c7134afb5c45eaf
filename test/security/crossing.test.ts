// Guest values that cross to the host (a Response's status, statusText and headers) are untrusted
// input: a bad one must become a clear 500 for that request, never a process-killing throw in
// node:http, and the neighbour worker must keep answering.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const respond = (body: string) => `export default { async fetch(request) { ${body} } }`;

const attacks: Record<string, string> = {
  // The two findings of issue 22: node:http stored the bad reason and threw twice.
  'newline-status-text': respond(`const r = new Response('x'); Object.defineProperty(r, 'statusText', { value: '\\n' }); return r;`),
  'status600': respond(`const r = new Response('x'); Object.defineProperty(r, 'status', { value: 600 }); return r;`),
  'status99': respond(`const r = new Response('x'); Object.defineProperty(r, 'status', { value: 99 }); return r;`),
  'status-fraction': respond(`const r = new Response('x'); Object.defineProperty(r, 'status', { value: 200.5 }); return r;`),
  'status-string': respond(`const r = new Response('x'); Object.defineProperty(r, 'status', { value: '200' }); return r;`),
  'control-status-text': respond(`const r = new Response('x'); Object.defineProperty(r, 'statusText', { value: 'ok\\u0000' }); return r;`),
  'unicode-status-text': respond(`const r = new Response('x'); Object.defineProperty(r, 'statusText', { value: 'ok \\u2028 ☃' }); return r;`),
  'huge-status-text': respond(`const r = new Response('x'); Object.defineProperty(r, 'statusText', { value: 'a'.repeat(1 << 20) }); return r;`),
  'object-status-text': respond(`const r = new Response('x'); Object.defineProperty(r, 'statusText', { value: { toString() { return 'x' } } }); return r;`),
  'throwing-getter': respond(`const r = new Response('x'); Object.defineProperty(r, 'status', { get() { throw new Error('gotcha') } }); return r;`),
  'throwing-headers': respond(`const r = new Response('x'); Object.defineProperty(r, 'headers', { get() { throw new Error('no headers') } }); return r;`),
  'proxy-response': respond(`return new Proxy(new Response('x'), { get(t, k) { if (k === 'statusText') return '\\r\\nX-Injected: 1'; const v = Reflect.get(t, k, t); return typeof v === 'function' ? v.bind(t) : v; } });`),
  'bad-header-name': respond(`const r = new Response('x'); Object.defineProperty(r, 'headers', { value: [['bad name', 'v']] }); return r;`),
  'bad-header-value': respond(`const r = new Response('x'); Object.defineProperty(r, 'headers', { value: { [Symbol.iterator]: function* () { yield ['x-a', 'v\\r\\nx-injected: 1']; } } }); return r;`),
  'header-not-pairs': respond(`const r = new Response('x'); Object.defineProperty(r, 'headers', { value: { [Symbol.iterator]: function* () { yield 'x'; yield [1]; } } }); return r;`),
  'streamed-bad-status-text': respond(`const r = new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('x')); c.close(); } })); Object.defineProperty(r, 'statusText', { value: 'a\\rb' }); return r;`),
};

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ ...attacks, neighbour: respond(`return new Response('neighbour ok');`) });
});
afterAll(() => server?.close());

describe('guest values crossing to the host', () => {
  it('a statusText with a newline is a 500 naming it; the process and the neighbour live on', async () => {
    const res = await server.request('newline-status-text');
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/statusText/);
    expect((await server.request('neighbour')).text).toBe('neighbour ok');
  });

  it('a status outside 200-599 is a 500 naming it, never sent as is', async () => {
    for (const name of ['status600', 'status99', 'status-fraction', 'status-string']) {
      const res = await server.request(name);
      expect(res.status, name).toBe(500);
      expect(res.text, name).toMatch(/status/);
    }
  });

  it('bad statusText, headers and throwing shapes end as a 500 for that request only', async () => {
    let neighbourFailures = 0;
    for (const name of Object.keys(attacks)) {
      const res = await server.request(name);
      if (name === 'unicode-status-text') {
        // Not sendable in HTTP/1.1's reason phrase: refused like the others.
        expect(res.status, name).toBe(500);
      } else {
        expect(res.status, name).toBe(500);
      }
      expect(res.headers['x-injected'], name).toBeUndefined();
      const neighbour = await server.request('neighbour');
      if (neighbour.status !== 200 || neighbour.text !== 'neighbour ok') neighbourFailures++;
    }
    expect(neighbourFailures).toBe(0);
  });

  it('logs the refused value against the worker', async () => {
    await server.request('bad-header-name');
    const line = server.logs.find((l) => l.worker === 'bad-header-name' && l.status === 500);
    expect(String(line?.err)).toMatch(/header/i);
  });
});

describe("the ingress's error path", () => {
  // Past the runtime's check, node:http is still the last word: a runtime that lets a bad value
  // through (a bug, a future field) must cost one 500, not the process.
  it('answers 500 when node:http refuses a response, without throwing twice', async () => {
    const http = await import('node:http');
    const { createIngress } = await import('../../src/data-plane/ingress.js');
    const { Router } = await import('../../src/data-plane/router.js');
    const { captureLogger } = await import('../helpers/server.js');
    const { logger, logs } = captureLogger();
    const answers = [
      { status: 200, statusText: '\n', headers: [] as [string, string][] },
      { status: 200, statusText: 'ok', headers: [['bad name', 'v']] as [string, string][] },
      { status: 200, statusText: 'ok', headers: [['x-a', 'a\r\nb']] as [string, string][] },
    ];
    let next = 0;
    const runtime = {
      isLive: () => true,
      prewarm: () => null,
      definition: () => undefined,
      fetch: async () => ({ ...answers[next++ % answers.length], body: 'x', cpuMs: 0, requestId: 'r' }),
    };
    const router = new Router(() => true);
    router.defaultWorker = 'any';
    const server = createIngress({ runtime: runtime as never, router, logger });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as { port: number }).port;
    try {
      for (let i = 0; i < answers.length; i++) {
        const status = await new Promise<number>((resolve, reject) => {
          http.get({ port, host: '127.0.0.1', path: '/' }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }).on('error', reject);
        });
        expect(status).toBe(500);
      }
      expect(logs.filter((l) => String(l.err).includes('refused by node:http'))).toHaveLength(answers.length);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
