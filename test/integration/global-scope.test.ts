// A worker's top level (its global scope) may not start I/O, set or clear timers or make random
// values: workerd refuses them there with "Disallowed operation called within global scope", and
// so does Cinder, with the same words, failing the load (the upload, through the admin API).
// Cinder once took them silently: a timer or fetch awaited at the top level then never settled
// and the load failed with an unrelated ReferenceError, and random values made there would be the
// same in every isolate born from the version's snapshot. What needs no request may still be
// awaited there (crypto.subtle); a top level that waits on what never settles fails with
// workerd's "Top-level await in module is unsettled." within the startup limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';
import { NeighbourLoad } from '../helpers/neighbour-load.js';

const DISALLOWED = 'Disallowed operation called within global scope. Asynchronous I/O (ex: fetch() or connect()), setting a timeout, and generating random values are not allowed within global scope. To fix this error, perform this operation within a handler. https://developers.cloudflare.com/workers/runtime-apis/handlers/';

const handler = `export default { fetch() { return new Response('loaded') } }`;

// Each is a whole top level that workerd refuses (checked against workerd's own binary).
const refused: Record<string, string> = {
  'set-timeout': `setTimeout(() => {}, 10); ${handler}`,
  'set-interval': `setInterval(() => {}, 10); ${handler}`,
  'clear-timeout': `clearTimeout(1); ${handler}`,
  'awaited-timer': `await new Promise((resolve) => setTimeout(resolve, 10)); ${handler}`,
  'abort-timeout': `AbortSignal.timeout(10); ${handler}`,
  'fetch': `fetch('http://example.com/').catch(() => {}); ${handler}`,
  'awaited-fetch': `await fetch('http://example.com/'); ${handler}`,
  'random-values': `crypto.getRandomValues(new Uint8Array(4)); ${handler}`,
  'random-uuid': `crypto.randomUUID(); ${handler}`,
  'service-worker': `setTimeout(() => {}, 1); addEventListener('fetch', (event) => event.respondWith(new Response('loaded')));`,
};

let server: TestServer;
let neighbour: NeighbourLoad | null = null;

beforeAll(async () => {
  const workers: Parameters<typeof startTestServer>[0] = {
    neighbour: `export default { fetch() { return new Response('neighbour ok') } }`,
    // What workerd allows at the top level: Math.random, the clock, crypto.subtle awaited.
    allowed: `const m = Math.random();
      const now = Date.now();
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('abc')));
      await Promise.resolve();
      export default {
        async fetch() {
          // ...and in a handler, everything refused at the top level works.
          await new Promise((resolve) => setTimeout(resolve, 1));
          const id = setInterval(() => {}, 1000); clearInterval(id);
          const uuid = crypto.randomUUID();
          const bytes = crypto.getRandomValues(new Uint8Array(4));
          return new Response([typeof m, typeof now, digest[0].toString(16), uuid.length, bytes.length].join(' '));
        },
      };`,
    // A worker's limit for its start-up is the deadline for its top level to settle.
    unsettled: { code: `await new Promise(() => {}); ${handler}`, limits: { startupMs: 500 } },
    // Code after an await is outside isolated-vm's timeout: a spin there is still the startup limit.
    // CPU spent before the await does not make a top level that then waits look like a spinning one.
    'works-then-waits': { code: `let x = 0; for (let i = 0; i < 1e7; i++) x += i; await new Promise(() => {}); ${handler}`, limits: { startupMs: 2000 } },
    'spins-after-await': { code: `await crypto.subtle.digest('SHA-256', new Uint8Array(1)); for (;;) {} ${handler}`, limits: { startupMs: 2000 } },
    // A chain the top level starts and does not await: its continuation runs in a task no
    // isolated-vm timeout covers, before or after the install.
    'spins-unawaited': { code: `crypto.subtle.digest('SHA-256', new Uint8Array(1)).then(() => { for (;;) {} }); ${handler}`, limits: { startupMs: 500, cpuMs: 50 } },
  };
  for (const [name, code] of Object.entries(refused)) workers[name] = code;
  server = await startTestServer(workers);
  neighbour = new NeighbourLoad(server);
});

afterAll(async () => {
  await neighbour?.stop();
  await server?.close();
});

describe('a worker\'s global scope', () => {
  for (const name of Object.keys(refused)) {
    it(`refuses ${name} with workerd's error, failing the load`, async () => {
      const res = await server.request(name);
      expect(res.status).toBe(500);
      expect(res.text).toContain(`Worker failed to load: Error: ${DISALLOWED}`);
    });
  }

  it('allows Math.random, the clock and crypto.subtle awaited at the top level; handlers may use all of it', async () => {
    const res = await server.request('allowed');
    expect(res.status, res.text).toBe(200);
    // SHA-256("abc") begins ba 78 16 bf
    expect(res.text).toBe('number number ba 36 4');
  });

  it('fails a top level that waits on what never settles, within the startup limit, and the neighbour never fails', async () => {
    const res = await server.request('unsettled');
    expect(res.status).toBe(500);
    expect(res.text).toContain('Worker failed to load: Error: Top-level await in module is unsettled.');
    expect(neighbour!.requests).toBeGreaterThan(0);
    expect(neighbour!.failures).toBe(0);
  });

  it('ends an isolate whose unawaited top-level chain spins, during the load or after it: no request hangs, the neighbour never fails', async () => {
    // Where the chain's continuation runs depends on when the host's digest answers: before the
    // install (the load's deadline ends it: 503), or after it, outside any request (the idle
    // watch ends the isolate past one CPU limit; the request itself was answered).
    for (let attempt = 0; attempt < 3; attempt++) {
      const res = await server.request('spins-unawaited');
      expect([200, 503], res.text).toContain(res.status);
      if (res.status === 503) expect(res.text).toMatch(/startup time limit|CPU time limit/);
    }
    // The spinning isolate was ended, and the log says which way (a failed load is then answered
    // from the version's kept load error, without another isolate).
    const ended = () => server.logs.some((line) => line.worker === 'spins-unawaited' && (String(line.msg).includes('startup time limit') || line.limit === 'cpu'));
    for (let waited = 0; !ended() && waited < 20_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ended()).toBe(true);
    expect(neighbour!.requests).toBeGreaterThan(0);
    expect(neighbour!.failures).toBe(0);
  });

  it('calls a top level that computed and then waits on what never settles unsettled, not over the startup limit', async () => {
    const res = await server.request('works-then-waits');
    expect(res.status).toBe(500);
    expect(res.text).toContain('Worker failed to load: Error: Top-level await in module is unsettled.');
  });

  it('names the startup limit for a top level that spins after an await, every time, and the neighbour never fails', async () => {
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await server.request('spins-after-await');
      expect(res.status).toBe(503);
      expect(res.text).toContain('exceeded the startup time limit');
      expect(res.text).not.toContain('unsettled');
    }
    expect(neighbour!.requests).toBeGreaterThan(0);
    expect(neighbour!.failures).toBe(0);
  });
});

describe('an upload through the admin API', () => {
  let cinder: TestCinder;
  beforeAll(async () => {
    cinder = await startCinder();
  });
  afterAll(async () => {
    await cinder?.close({ cleanup: true });
  });

  it('is refused with the error when the top level sets a timer, and kept when it does not', async () => {
    const bad = await cinder.admin('PUT', '/workers/app', { body: multipart({ main_module: 'index.js' }, { 'index.js': refused['set-timeout'] }) });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain(DISALLOWED);
    const good = await cinder.admin('PUT', '/workers/app', { body: multipart({ main_module: 'index.js' }, { 'index.js': handler }) });
    expect(good.status, good.text).toBe(201);
    expect((await cinder.get('app.example.com', '/')).text).toBe('loaded');
  });
});
