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
      cityHeader: request.headers.get('cf-ipcity'),
    });
  },
};`;

const passWorker = `export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname.startsWith('/pass')) ctx.passThroughOnException();
    if (url.pathname.endsWith('/ok')) return new Response('worker answered');
    if (url.pathname.endsWith('/echo')) return new Response(request.body);
    // read the whole body, or only its first chunk, before throwing
    if (url.pathname.endsWith('/read-all')) throw new Error('worker read ' + (await request.arrayBuffer()).byteLength + ' bytes, then broke');
    if (url.pathname.endsWith('/read-some')) {
      const { value } = await request.body.getReader().read();
      throw new Error('worker read a chunk of ' + value.byteLength + ' bytes, then broke');
    }
    throw new Error('worker broke at ' + url.pathname);
  },
};`;

const serviceWorkerPass = `addEventListener('fetch', (event) => { event.passThroughOnException(); throw new TypeError('sw broke'); });`;

let edge: TestCinder; // the ingress is the edge: nothing the client sends about itself is believed
let behindProxy: TestCinder; // 127.0.0.1 is a trusted proxy
let origin: http.Server;
let originUrl: string;
const originSaw: { method: string; url: string; host: string; body: string; ip: string | undefined }[] = [];
/** the bodies the origin received, as bytes, and how they were framed */
const originBodies: { bytes: Buffer; length: string | undefined; chunked: boolean }[] = [];

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
      originBodies.push({ bytes: Buffer.concat(chunks), length: req.headers['content-length'], chunked: req.headers['transfer-encoding'] === 'chunked' });
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

  it("behind a trusted proxy: its visitor location headers become request.cf's geo fields, and isEUCountry follows the country", async () => {
    const geo = {
      'cf-ipcountry': 'NL',
      'cf-ipcity': 'Amsterdam',
      'cf-ipcontinent': 'EU',
      'cf-iplatitude': '52.37403',
      'cf-iplongitude': '4.88969',
      'cf-region': 'North Holland',
      'cf-region-code': 'NH',
      'cf-metro-code': '0',
      'cf-postal-code': '1012',
      'cf-timezone': 'Europe/Amsterdam',
    };
    const told = JSON.parse((await call(behindProxy, 'cf.example', '/', geo)).text);
    expect(told.cf).toEqual({
      colo: 'LOCAL',
      httpProtocol: 'HTTP/1.1',
      country: 'NL',
      isEUCountry: '1',
      city: 'Amsterdam',
      continent: 'EU',
      latitude: '52.37403',
      longitude: '4.88969',
      region: 'North Holland',
      regionCode: 'NH',
      metroCode: '0',
      postalCode: '1012',
      timezone: 'Europe/Amsterdam',
    });
    expect(told.cityHeader).toBe('Amsterdam');
    const us = JSON.parse((await call(behindProxy, 'cf.example', '/', { 'cf-ipcountry': 'US', 'CF-IPCity': 'Austin' })).text);
    expect(us.cf).toMatchObject({ country: 'US', city: 'Austin' });
    expect(us.cf.isEUCountry).toBeUndefined();
  });

  it('at the edge: visitor location headers a client sends are dropped, neither in request.cf nor in the headers', async () => {
    const out = JSON.parse((await call(edge, 'cf.example', '/', { 'cf-ipcity': 'Nowhere', 'cf-timezone': 'Mars/Olympus', 'cf-region-code': 'XX', 'cf-ipcountry': 'DE' })).text);
    expect(out.cf).toEqual({ colo: 'AMS', httpProtocol: 'HTTP/1.1' });
    expect(out.cityHeader).toBeNull();
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

  describe('with a body the worker already read', () => {
    const send = async (cinder: TestCinder, path: string, body: Buffer | AsyncIterable<Buffer>, headers: Record<string, string> = {}) => {
      originSaw.length = 0;
      originBodies.length = 0;
      const res = await request(`${cinder.server.url}${path}`, { method: 'POST', headers: { host: 'shop.example', ...headers }, body });
      return { status: res.statusCode, text: await res.body.text() };
    };
    // distinct bytes everywhere, so a chunk lost, repeated or reordered shows
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) & 0xff));
    async function* chunked(whole: Buffer, size: number) {
      for (let at = 0; at < whole.length; at += size) yield whole.subarray(at, at + size);
    }

    it('a small body read whole: the origin gets it exactly', async () => {
      const res = await send(edge, '/pass/read-all', Buffer.from('two apples'));
      expect(res.text).toBe('origin answered POST /pass/read-all');
      expect(originBodies[0].bytes.toString()).toBe('two apples');
    });

    it('a 300 KB body (handed into the isolate whole) read whole: the origin gets the same bytes', async () => {
      const body = bytes(300 * 1024);
      const res = await send(edge, '/pass/read-all', body);
      expect(res.status).toBe(203);
      expect(originBodies[0].bytes.equals(body)).toBe(true);
      expect(originBodies[0].length).toBe(String(body.length));
    });

    it('a 3 MB body streamed in, of which the worker read one chunk: the origin gets all of it, Content-Length kept', async () => {
      const body = bytes(3 * 1024 * 1024);
      const res = await send(edge, '/pass/read-some', body, { 'content-length': String(body.length) });
      expect(res.status, res.text).toBe(203);
      expect(originBodies[0].bytes.length).toBe(body.length);
      expect(originBodies[0].bytes.equals(body)).toBe(true);
      expect(originBodies[0].length).toBe(String(body.length));
      expect(edge.logs.some((l) => l.passed_through === originUrl && /worker read a chunk of \d+ bytes, then broke/.test(String(l.err)))).toBe(true);
    });

    it('a chunked upload the worker read to the end: the origin gets the same bytes', async () => {
      const body = bytes(200 * 1024 + 17);
      const res = await send(edge, '/pass/read-all', chunked(body, 16 * 1024));
      expect(res.text).toBe('origin answered POST /pass/read-all');
      expect(originBodies[0].bytes.equals(body)).toBe(true);
      expect(originBodies[0].chunked).toBe(true);
    });

    it('a streamed body the worker read past the kept bound: a 500 naming why, nothing forwarded', async () => {
      const body = bytes(3 * 1024 * 1024);
      const res = await send(edge, '/pass/read-all', body, { 'content-length': String(body.length) });
      expect(res.status).toBe(500);
      expect(res.text).toMatch(/^Worker threw exception: Error: worker read 3145728 bytes, then broke\nctx\.passThroughOnException\(\) was called, but the request cannot be passed through to the origin: the worker had read more than 1048576 bytes of the request body, more than the host keeps to pass it through \(cinder serve --origin-body-max\)\n/);
      expect(originSaw).toEqual([]);
      // the connection and the server are fine afterwards
      expect((await call(edge, 'shop.example', '/pass/ok')).text).toBe('worker answered');
    });

    it('a body read whole over a lower --origin-body-max: a 500 naming the sizes; a body within it passes', async () => {
      const small = await startCinder({ origins: [`shop.example/*=${originUrl}`], allowPrivateFetch: true, originBodyMax: 1000 });
      try {
        await deploy(small, 'pass', passWorker);
        const routed = await small.admin('PUT', '/workers/pass/routes', { json: { routes: ['shop.example/*'] } });
        expect(routed.status, routed.text).toBe(200);
        const over = await send(small, '/pass/read-all', bytes(5000));
        expect(over.status).toBe(500);
        expect(over.text).toMatch(/cannot be passed through to the origin: the request body is 5000 bytes, more than the 1000 bytes the host keeps to pass it through \(cinder serve --origin-body-max\)/);
        expect(originSaw).toEqual([]);
        const within = await send(small, '/pass/read-all', bytes(1000));
        expect(within.status).toBe(203);
        expect(originBodies[0].bytes.equals(bytes(1000))).toBe(true);
      } finally {
        await small.close({ cleanup: true });
      }
    });

    it('a worker on the route that streams the body back as its response (and calls passThroughOnException) echoes all of it', async () => {
      const body = bytes(3 * 1024 * 1024 + 5);
      const res = await request(`${edge.server.url}/pass/echo`, { method: 'POST', headers: { host: 'shop.example', 'content-length': String(body.length) }, body });
      expect(res.statusCode).toBe(200);
      expect(Buffer.from(await res.body.arrayBuffer()).equals(body)).toBe(true);
      // the same connection pool serves the next request
      expect((await call(edge, 'shop.example', '/pass/ok')).text).toBe('worker answered');
    });

    it('the bound limits only what is kept: a worker on the route reads a body past it whole', async () => {
      const body = bytes(2 * 1024 * 1024);
      const res = await send(edge, '/plain/read-all', body, { 'content-length': String(body.length) });
      expect(res.status).toBe(500);
      expect(res.text).toMatch(/^Worker threw exception: Error: worker read 2097152 bytes, then broke\nrequest id/);
      expect(originSaw).toEqual([]);
    });
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
