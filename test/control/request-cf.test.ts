// What a worker learns about the client through `cinder serve`: request.cf (colo from the
// operator, the HTTP protocol, what the client accepts; country only from a trusted proxy), and
// CF-Connecting-IP / X-Forwarded-For set from the socket, which a client cannot spoof unless it is
// a proxy the operator trusts (--trust-proxy). And ctx.passThroughOnException(): a worker that
// throws after calling it has its request answered by the origin the operator configured for the
// host (--origin), a real HTTP server here, under the address policy.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { multipart, startCinder, type TestCinder } from './helpers.js';

const cfWorker = `export default {
  fetch(request) {
    const cf = request.cf;
    return Response.json({
      cf,
      frozen: Object.isFrozen(cf),
      sameObject: request.cf === cf && request.clone().cf === cf,
      ip: request.headers.get('cf-connecting-ip'),
      xff: request.headers.get('x-forwarded-for'),
      country: request.headers.get('cf-ipcountry'),
    });
  },
};`;

const passWorker = `export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname.startsWith('/pass')) ctx.passThroughOnException();
    if (url.pathname.endsWith('/ok')) return new Response('worker answered');
    throw new Error('worker broke at ' + url.pathname);
  },
};`;

const serviceWorkerPass = `addEventListener('fetch', (event) => { event.passThroughOnException(); throw new TypeError('sw broke'); });`;

let edge: TestCinder; // the ingress is the edge: nothing the client sends about itself is believed
let behindProxy: TestCinder; // 127.0.0.1 is a trusted proxy
let origin: http.Server;
let originUrl: string;
const originSaw: { method: string; url: string; host: string; body: string; ip: string | undefined }[] = [];

async function deploy(cinder: TestCinder, name: string, code: string, main = 'index.js') {
  const metadata = code.includes('addEventListener') ? { body_part: main } : { main_module: main };
  const res = await cinder.admin('PUT', `/workers/${name}`, { body: multipart(metadata, { [main]: code.includes('addEventListener') ? { code, type: 'application/javascript' } : code }) });
  expect(res.status, res.text).toBe(201);
}

async function call(cinder: TestCinder, host: string, path: string, headers: Record<string, string> = {}, init: { method?: string; body?: string } = {}) {
  const res = await request(`${cinder.server.url}${path}`, { method: (init.method ?? 'GET') as 'GET', headers: { host, ...headers }, body: init.body });
  const text = await res.body.text();
  return { status: res.statusCode, text, headers: res.headers };
}

beforeAll(async () => {
  origin = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      originSaw.push({ method: req.method!, url: req.url!, host: req.headers.host!, body: Buffer.concat(chunks).toString(), ip: req.headers['cf-connecting-ip'] as string | undefined });
      res.writeHead(203, { 'content-type': 'text/plain', 'x-origin': 'yes', 'set-cookie': ['a=1', 'b=2'] });
      res.end(`origin answered ${req.method} ${req.url}`);
    });
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const port = (origin.address() as AddressInfo).port;
  originUrl = `http://127.0.0.1:${port}`;
  edge = await startCinder({
    colo: 'AMS',
    trustProxy: ['10.0.0.0/8'],
    origins: [`shop.example/*=${originUrl}`],
    // the origin is on loopback: only this host:port is allowed, as for a worker's own fetch
    allowPrivateFetch: [`127.0.0.1:${port}`],
  });
  behindProxy = await startCinder({ trustProxy: ['127.0.0.1', '::1'], origins: [`loop.example/*=${originUrl}`] });
  for (const cinder of [edge, behindProxy]) {
    await deploy(cinder, 'cf', cfWorker);
    await deploy(cinder, 'pass', passWorker);
    await deploy(cinder, 'sw', serviceWorkerPass, 'worker.js');
    const res = await cinder.admin('PUT', '/workers/pass/routes', { json: { routes: ['shop.example/*', 'other.example/*', 'loop.example/*'] } });
    expect(res.status, res.text).toBe(200);
  }
});
afterAll(async () => {
  await edge.close({ cleanup: true });
  await behindProxy.close({ cleanup: true });
  await new Promise((r) => origin.close(r));
});

describe('request.cf', () => {
  it('holds the colo the operator named, the HTTP protocol and what the client accepts; built once, frozen', async () => {
    const out = JSON.parse((await call(edge, 'cf.example', '/', { 'accept-encoding': 'gzip, br' })).text);
    expect(out.cf).toEqual({ colo: 'AMS', httpProtocol: 'HTTP/1.1', clientAcceptEncoding: 'gzip, br' });
    expect(out.frozen).toBe(true);
    expect(out.sameObject).toBe(true);
  });

  it('defaults colo to LOCAL', async () => {
    expect(JSON.parse((await call(behindProxy, 'cf.example', '/')).text).cf.colo).toBe('LOCAL');
  });
});

describe('CF-Connecting-IP and X-Forwarded-For', () => {
  it('at the edge: the socket peer, whatever the client claims', async () => {
    const out = JSON.parse((await call(edge, 'cf.example', '/', { 'cf-connecting-ip': '6.6.6.6', 'x-forwarded-for': '1.2.3.4', 'cf-ipcountry': 'XX' })).text);
    expect(out.ip).toBe('127.0.0.1');
    expect(out.xff).toBe('1.2.3.4, 127.0.0.1');
    expect(out.country).toBeNull();
    expect(out.cf.country).toBeUndefined();
    const plain = JSON.parse((await call(edge, 'cf.example', '/')).text);
    expect([plain.ip, plain.xff]).toEqual(['127.0.0.1', '127.0.0.1']);
  });

  it('behind a trusted proxy: its CF-Connecting-IP, or the last X-Forwarded-For hop; its CF-IPCountry becomes cf.country', async () => {
    const told = JSON.parse((await call(behindProxy, 'cf.example', '/', { 'cf-connecting-ip': '203.0.113.7', 'x-forwarded-for': '203.0.113.7', 'cf-ipcountry': 'NL' })).text);
    expect(told.ip).toBe('203.0.113.7');
    expect(told.xff).toBe('203.0.113.7');
    expect(told.cf.country).toBe('NL');
    const hops = JSON.parse((await call(behindProxy, 'cf.example', '/', { 'x-forwarded-for': '198.51.100.1, 203.0.113.9' })).text);
    expect(hops.ip).toBe('203.0.113.9');
    const nonsense = JSON.parse((await call(behindProxy, 'cf.example', '/', { 'cf-connecting-ip': 'not an address' })).text);
    expect(nonsense.ip).toBe('127.0.0.1');
  });

  it('refuses a --trust-proxy entry that is not an address or range', async () => {
    await expect(startCinder({ trustProxy: ['10.0.0.0/99'] })).rejects.toThrow(/--trust-proxy: "10\.0\.0\.0\/99" has an invalid prefix length/);
  });
});

describe('ctx.passThroughOnException()', () => {
  it('answers with the origin when the worker throws after calling it: status, headers, body, as the client sent it', async () => {
    originSaw.length = 0;
    const res = await call(edge, 'shop.example', '/pass/cart?item=7', { 'cf-connecting-ip': '6.6.6.6' });
    expect(res.status).toBe(203);
    expect(res.text).toBe('origin answered GET /pass/cart?item=7');
    expect(res.headers['x-origin']).toBe('yes');
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(originSaw).toEqual([{ method: 'GET', url: '/pass/cart?item=7', host: 'shop.example', body: '', ip: '127.0.0.1' }]);
    expect(edge.logs.some((l) => l.worker === 'pass' && l.passed_through === originUrl && /worker broke/.test(String(l.err)))).toBe(true);
  });

  it('forwards the request body too', async () => {
    originSaw.length = 0;
    const res = await call(edge, 'shop.example', '/pass/order', { 'content-type': 'text/plain' }, { method: 'POST', body: 'two apples' });
    expect(res.text).toBe('origin answered POST /pass/order');
    expect(originSaw[0]).toMatchObject({ method: 'POST', body: 'two apples' });
  });

  it('leaves a worker that answers, or throws without calling it, as it is', async () => {
    expect((await call(edge, 'shop.example', '/pass/ok')).text).toBe('worker answered');
    const thrown = await call(edge, 'shop.example', '/boom');
    expect(thrown.status).toBe(500);
    expect(thrown.text).toMatch(/^Worker threw exception: Error: worker broke at \/boom/);
    expect(thrown.text).not.toMatch(/passThroughOnException/);
  });

  it('is a clear 500 when no origin is configured for the host', async () => {
    const res = await call(edge, 'other.example', '/pass/x');
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/worker broke at \/pass\/x\nctx\.passThroughOnException\(\) was called, but no origin is configured for this host \(cinder serve --origin\)/);
  });

  it('works from a service-worker script (event.passThroughOnException)', async () => {
    const config = await startCinder({ origins: [`sw.example/*=${originUrl}`], allowPrivateFetch: true });
    try {
      await deploy(config, 'sw', serviceWorkerPass, 'worker.js');
      const res = await call(config, 'sw.example', '/legacy');
      expect(res.text).toBe('origin answered GET /legacy');
    } finally {
      await config.close({ cleanup: true });
    }
  });

  it('obeys the address policy: a loopback origin the operator did not allow is refused (502)', async () => {
    originSaw.length = 0;
    const res = await call(behindProxy, 'loop.example', '/pass/y');
    expect(res.status).toBe(502);
    expect(res.text).toMatch(/could not be passed through to the origin: fetch to 127\.0\.0\.1:\d+ refused: private, loopback/);
    expect(originSaw).toEqual([]);
  });
});
