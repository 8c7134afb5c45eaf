// The example apps built on npm libraries (Hono, itty-router, jose), bundled by `cinder dev` from
// examples/ as `npm start` serves them, exercised over real HTTP.
import { createLocalJWKSet, jwtVerify } from 'jose';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { captureLogger } from '../helpers/server.js';
import { startDev, type DevServer } from '../../src/app/dev.js';

const examples = fileURLToPath(new URL('../../examples', import.meta.url));
let dev: DevServer;

beforeAll(async () => {
  // A first request of the jwt example uses ~6 ms of CPU here (jose's code compiled on first use):
  // 1 s of CPU keeps a slower, loaded CI machine far from the 50 ms default (these tests are about
  // what the apps answer, not their CPU).
  dev = await startDev({ paths: [examples], port: 0, defaultWorker: 'hello', logger: captureLogger().logger, runtime: { pool: { min: 1 } }, limits: { cpuMs: 1000 } });
}, 60_000);
afterAll(() => dev?.close());

async function call(worker: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const res = await request(`${dev.url}${path}`, { method: (init.method ?? 'GET') as 'GET', headers: { host: `${worker}.localhost`, ...init.headers }, body: init.body });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

describe('hono-app', () => {
  it('routes with params and repeated queries, runs middleware, answers JSON', async () => {
    const res = await call('hono-app', '/api/users/42?field=name&field=email&verbose=1', { headers: { 'x-request-id': 'abc' } });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ id: '42', fields: ['name', 'email'], verbose: true, requestId: 'abc' });
    expect(res.headers).toMatchObject({ 'x-request-id': 'abc', 'x-powered-by': 'Hono on Cinder', 'content-type': 'application/json' });
  });

  it('parses JSON, urlencoded and multipart bodies', async () => {
    const echo = await call('hono-app', '/api/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":[1,2]}' });
    expect([echo.status, echo.json()]).toEqual([201, { received: { a: [1, 2] }, contentType: 'application/json' }]);
    const form = await call('hono-app', '/api/form', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=2&b=3' });
    expect(form.json()).toEqual({ a: '1', b: ['2', '3'] });
    const body = '--x\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nfile body\r\n--x\r\nContent-Disposition: form-data; name="n"\r\n\r\nv\r\n--x--\r\n';
    const multi = await call('hono-app', '/api/form', { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body });
    expect(multi.json()).toEqual({ f: {}, n: 'v' }); // a File serializes as {}
  });

  it('answers CORS preflights and guards /admin with basic auth', async () => {
    const pre = await call('hono-app', '/api/echo', { method: 'OPTIONS', headers: { origin: 'https://example.com', 'access-control-request-method': 'POST' } });
    expect(pre.status).toBe(204);
    expect(pre.headers).toMatchObject({ 'access-control-allow-origin': 'https://example.com', 'access-control-allow-methods': 'GET,POST', 'access-control-max-age': '600' });
    expect((await call('hono-app', '/admin/stats')).status).toBe(401);
    const ok = await call('hono-app', '/admin/stats', { headers: { authorization: `Basic ${Buffer.from('admin:hunter2').toString('base64')}` } });
    expect([ok.status, ok.json()]).toEqual([200, { ok: true, user: 'admin' }]);
  });

  it('computes an ETag with crypto.subtle and answers If-None-Match with 304', async () => {
    const first = await call('hono-app', '/etag');
    expect(first.headers.etag).toMatch(/^"[0-9a-f]{40}"$/);
    const again = await call('hono-app', '/etag', { headers: { 'if-none-match': String(first.headers.etag) } });
    expect([again.status, again.text]).toEqual([304, '']);
  });

  it('streams a response through stream(): the first chunk arrives before the last is written', async () => {
    const res = await request(`${dev.url}/stream`, { headers: { host: 'hono-app.localhost' } });
    const arrivals: { at: number; text: string }[] = [];
    for await (const chunk of res.body) arrivals.push({ at: performance.now(), text: Buffer.from(chunk).toString() });
    expect(arrivals.map((a) => a.text).join('')).toBe('chunk 1\nchunk 2\nchunk 3\nchunk 4\nchunk 5\n');
    expect(arrivals.length).toBeGreaterThan(1);
    // The app sleeps 20 ms after each chunk: the first must have arrived well before the end.
    expect(arrivals.at(-1)!.at - arrivals[0].at).toBeGreaterThan(40);
    expect(arrivals[0].text).toBe('chunk 1\n');
  });

  it('streams server-sent events and handles errors and unknown paths', async () => {
    const sse = await call('hono-app', '/sse');
    expect(sse.headers['content-type']).toBe('text/event-stream');
    expect(sse.text).toBe([1, 2, 3].map((i) => `event: tick\ndata: {"i":${i}}\nid: ${i}\n\n`).join(''));
    expect([(await call('hono-app', '/teapot')).status, (await call('hono-app', '/error')).json(), (await call('hono-app', '/nope')).status]).toEqual([
      418,
      { error: 'something broke' },
      404,
    ]);
  });
});

describe('itty-router', () => {
  it('routes, formats results as JSON, and keeps error statuses through CORS', async () => {
    expect((await call('itty-router', '/hello/world')).json()).toBe('Hello, world!');
    expect((await call('itty-router', '/numbers')).json()).toEqual([1, 2, 3]);
    expect((await call('itty-router', '/search?q=x&tag=a&tag=b')).json()).toEqual({ query: { q: 'x', tag: ['a', 'b'] } });
    expect((await call('itty-router', '/todos/4')).json()).toEqual({ id: 4, title: 'todo 4', done: true });
    const bad = await call('itty-router', '/todos/abc');
    expect([bad.status, bad.json()]).toEqual([400, { status: 400, error: 'id must be an integer' }]);
    const created = await call('itty-router', '/todos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"t"}' });
    expect([created.status, created.json()]).toEqual([201, { id: 101, title: 't', done: false }]);
    expect((await call('itty-router', '/todos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(422);
    expect((await call('itty-router', '/missing')).status).toBe(404);
    expect((await call('itty-router', '/boom')).status).toBe(500);
    const redirect = await call('itty-router', '/redirect');
    expect([redirect.status, redirect.headers.location]).toEqual([302, 'https://example.com/elsewhere']);
  });

  it('answers preflights and adds CORS headers for allowed origins', async () => {
    const pre = await call('itty-router', '/todos', { method: 'OPTIONS', headers: { origin: 'https://example.com', 'access-control-request-method': 'POST' } });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('https://example.com');
    expect((await call('itty-router', '/hello/x', { headers: { origin: 'https://example.com' } })).headers['access-control-allow-origin']).toBe('https://example.com');
  });
});

describe('jwt (jose)', () => {
  const claims = { sub: 'alice', iat: 1700000000, exp: 4102444800 };

  it('signs RS256, ES256 and EdDSA tokens that Node verifies against the published JWKS', async () => {
    const jwks = createLocalJWKSet((await call('jwt', '/jwks')).json());
    for (const alg of ['RS256', 'ES256', 'EdDSA']) {
      const res = await call('jwt', `/sign?alg=${alg}`, { method: 'POST', body: JSON.stringify(claims) });
      expect(res.status).toBe(200);
      const { payload, protectedHeader } = await jwtVerify(res.json().token, jwks, { issuer: 'urn:cinder:examples', audience: 'urn:cinder:clients' });
      expect([protectedHeader.alg, payload.sub]).toEqual([alg, 'alice']);
    }
  });

  it('verifies its own tokens for every algorithm and refuses forged ones', async () => {
    for (const alg of ['HS256', 'RS256', 'ES256', 'EdDSA']) {
      const { token } = (await call('jwt', `/sign?alg=${alg}`, { method: 'POST', body: JSON.stringify(claims) })).json();
      const ok = await call('jwt', '/verify', { method: 'POST', body: token });
      expect([ok.status, ok.json().payload.sub]).toEqual([200, 'alice']);
      const [h, , s] = token.split('.');
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'mallory' })).toString('base64url')}.${s}`;
      const bad = await call('jwt', '/verify', { method: 'POST', body: forged });
      expect([bad.status, bad.json()]).toEqual([401, { valid: false, error: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' }]);
    }
  });

  it('round-trips freshly generated keys and catches tampering and expiry', async () => {
    const results = (await call('jwt', '/roundtrip')).json();
    for (const alg of ['HS256', 'RS256', 'ES256', 'EdDSA']) {
      expect(results[alg]).toMatchObject({ verified: true, tamperedRejected: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', expiredRejected: 'ERR_JWT_EXPIRED' });
    }
  });
});

describe('chat (WebSockets through cinder dev)', () => {
  it('shows each member the others\' messages', async () => {
    const { WebSocket } = await import('ws');
    const join = (name: string) =>
      new Promise<{ ws: InstanceType<typeof WebSocket>; lines: { from: string; text: string }[] }>((resolve, reject) => {
        const ws = new WebSocket(`${dev.url.replace('http:', 'ws:')}/?name=${name}`, { headers: { host: 'chat.localhost' } });
        const lines: { from: string; text: string }[] = [];
        ws.on('message', (data) => lines.push(JSON.parse(data.toString())));
        ws.once('open', () => resolve({ ws, lines }));
        ws.once('error', reject);
      });
    const until = async (check: () => boolean) => {
      const deadline = Date.now() + 20_000; // far past what it takes here: CI is slower and loaded
      while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(check()).toBe(true);
    };
    const ana = await join('ana');
    const ben = await join('ben');
    await until(() => ana.lines.some((l) => l.text.startsWith('ben joined')));
    ben.ws.send('hello ana');
    await until(() => ana.lines.some((l) => l.from === 'ben' && l.text === 'hello ana'));
    ben.ws.close();
    await until(() => ana.lines.some((l) => l.text === 'ben left'));
    ana.ws.close();
    expect((await call('chat', '/')).text).toContain('<title>chat</title>');
  });
});
