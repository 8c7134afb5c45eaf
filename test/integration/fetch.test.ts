// Outbound fetch from workers: performed by the host with undici, limited per invocation, and
// refused for internal addresses unless the server allows them.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { isPrivateAddress } from '../../bindings/fetch/address-policy.js';

let upstream: http.Server;
let upstreamUrl = '';

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/json') return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ hello: 'upstream' }));
    if (url.pathname === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => res.writeHead(200, { 'x-method': req.method!, 'x-seen': String(req.headers['x-from-worker']), 'x-framing': req.headers['content-length'] !== undefined ? `content-length ${req.headers['content-length']}` : String(req.headers['transfer-encoding']) }).end(Buffer.concat(chunks)));
      return;
    }
    if (url.pathname === '/cookies') return res.writeHead(200, [['set-cookie', 'a=1'], ['set-cookie', 'b=2']].flat() as unknown as http.OutgoingHttpHeaders).end('c');
    if (url.pathname === '/redirect') return res.writeHead(302, { location: '/json' }).end();
    if (url.pathname === '/big') return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.alloc(300_000, 7));
    if (url.pathname === '/slow') return void setTimeout(() => res.end('late'), 2000);
    res.writeHead(404).end('nope');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()); }));

const proxy = (path: string, init = '{}') => `export default { async fetch(request) {
  const r = await fetch(UPSTREAM + ${JSON.stringify(path)}, ${init});
  return new Response(await r.text(), { status: r.status, headers: r.headers });
} }`;

// Workers moving MBs through streams use 6-10 ms of CPU here (of the 50 ms default): a slower,
// loaded CI machine could cross it. These tests are about what arrives, not about CPU.
const ROOMY = { cpuMs: 1000 };

function worker(code: string, limits?: Record<string, number>) {
  return { code: code.replaceAll('UPSTREAM', JSON.stringify(upstreamUrl)), limits };
}

describe('outbound fetch (loopback explicitly allowed)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(
      {
        json: worker(proxy('/json')),
        post: worker(proxy('/echo', `{ method: 'POST', body: 'payload from worker', headers: { 'x-from-worker': 'yes' } }`)),
        cookies: worker(`export default { async fetch() { const r = await fetch(UPSTREAM + '/cookies'); return Response.json(r.headers.getSetCookie()) } }`),
        follow: worker(`export default { async fetch() { const r = await fetch(UPSTREAM + '/redirect'); return Response.json({ status: r.status, redirected: r.redirected, url: r.url, body: await r.json() }) } }`),
        manual: worker(`export default { async fetch() { const r = await fetch(UPSTREAM + '/redirect', { redirect: 'manual' }); return Response.json({ status: r.status, location: r.headers.get('location') }) } }`),
        error: worker(`export default { async fetch() { try { await fetch(UPSTREAM + '/redirect', { redirect: 'error' }); return new Response('followed') } catch (e) { return new Response(e.name) } } }`),
        big: worker(`export default { async fetch() { const r = await fetch(UPSTREAM + '/big'); const b = new Uint8Array(await r.arrayBuffer()); return Response.json({ length: b.length, allSeven: b.every((x) => x === 7) }) } }`, ROOMY),
        passthrough: worker(`export default { fetch() { return fetch(UPSTREAM + '/big') } }`),
        abort: worker(`export default { async fetch() { try { await fetch(UPSTREAM + '/slow', { signal: AbortSignal.timeout(50) }); return new Response('not aborted') } catch (e) { return new Response(e.name) } } }`),
        limited: worker(`export default { async fetch() { const out = []; for (let i = 0; i < 4; i++) { try { await fetch(UPSTREAM + '/json'); out.push('ok') } catch (e) { out.push(e.name + ': ' + e.message) } } return Response.json(out) } }`, { subrequests: 3 }),
        streamup: worker(`export default { async fetch() {
          const enc = new TextEncoder(); let i = 0;
          const body = new ReadableStream({ async pull(c) { await new Promise(r => setTimeout(r, 5)); if (i < 5) c.enqueue(enc.encode('part' + (i++) + ';')); else c.close(); } });
          const r = await fetch(UPSTREAM + '/echo', { method: 'POST', body, duplex: 'half' });
          return new Response(await r.text(), { headers: { 'x-upstream-framing': r.headers.get('x-framing') } });
        } }`, ROOMY),
        forward: worker(`export default { async fetch(request) {
          const r = await fetch(UPSTREAM + '/echo', { method: 'POST', body: request.body, duplex: 'half' });
          const b = new Uint8Array(await r.arrayBuffer());
          return Response.json({ length: b.length, first: b[0], last: b[b.length - 1] });
        } }`, ROOMY),
        badscheme: worker(`export default { async fetch() { try { await fetch('file:///etc/passwd'); return new Response('read it') } catch (e) { return new Response(e.name) } } }`),
      },
      { allowPrivateFetch: true },
    );
  });
  afterAll(() => server.close());

  it('fetches JSON', async () => {
    const res = await server.request('json');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ hello: 'upstream' });
  });

  it('sends method, headers and body', async () => {
    const res = await server.request('post');
    expect(res.text).toBe('payload from worker');
    expect(res.headers['x-method']).toBe('POST');
    expect(res.headers['x-seen']).toBe('yes');
  });

  it('keeps repeated Set-Cookie from upstream', async () => {
    expect(JSON.parse((await server.request('cookies')).text)).toEqual(['a=1', 'b=2']);
  });

  it('follows redirects, or not, as asked', async () => {
    expect(JSON.parse((await server.request('follow')).text)).toEqual({ status: 200, redirected: true, url: `${upstreamUrl}/json`, body: { hello: 'upstream' } });
    expect(JSON.parse((await server.request('manual')).text)).toEqual({ status: 302, location: '/json' });
    expect((await server.request('error')).text).toBe('TypeError');
  });

  it('streams large upstream bodies, also straight through to the client', async () => {
    expect(JSON.parse((await server.request('big')).text)).toEqual({ length: 300_000, allSeven: true });
    const res = await server.request('passthrough');
    expect(res.body.length).toBe(300_000);
    expect(res.body.every((b) => b === 7)).toBe(true);
  });

  it('aborts with an AbortSignal', async () => {
    expect((await server.request('abort')).text).toBe('TimeoutError');
  });

  it('enforces the subrequest limit with a TypeError', async () => {
    const out = JSON.parse((await server.request('limited')).text);
    expect(out.slice(0, 3)).toEqual(['ok', 'ok', 'ok']);
    expect(out[3]).toMatch(/^TypeError: Too many subrequests/);
  });

  it('streams a request body upstream as the guest produces it', async () => {
    const res = await server.request('streamup');
    // (what the server logged, should this ever fail: it once failed in CI with an empty body)
    const logged = () => JSON.stringify({ upstreamSaw: res.headers['x-upstream-framing'], logs: server.logs.filter((line) => line.worker === 'streamup') });
    expect(res.status, logged()).toBe(200);
    expect(res.text, logged()).toBe('part0;part1;part2;part3;part4;');
  });

  it('forwards a large incoming upload upstream without buffering it in the guest', async () => {
    const body = Buffer.alloc(2 * 1024 * 1024 + 3, 9);
    body[0] = 1;
    body[body.length - 1] = 2;
    expect(JSON.parse((await server.request('forward', '/', { method: 'POST', body })).text)).toEqual({ length: body.length, first: 1, last: 2 });
  });

  it('refuses non-HTTP schemes', async () => {
    expect((await server.request('badscheme')).text).toBe('TypeError');
  });
});

describe('outbound fetch policy (default: no private addresses)', () => {
  let server: TestServer;
  beforeAll(async () => {
    const probe = (target: string) => worker(`export default { async fetch() { try { const r = await fetch(${JSON.stringify(target)}); return new Response('reached ' + r.status) } catch (e) { return new Response(e.name + ': ' + e.message) } } }`);
    server = await startTestServer({
      loopback: probe('UPSTREAM_PLACEHOLDER'),
      localhost: probe('http://localhost:1/'),
      metadata: probe('http://169.254.169.254/latest/meta-data/'),
      v6: probe('http://[::1]:1/'),
    });
    server.deploy('loopback', worker(`export default { async fetch() { try { const r = await fetch(UPSTREAM + '/json'); return new Response('reached ' + r.status) } catch (e) { return new Response(e.name + ': ' + e.message) } } }`));
  });
  afterAll(() => server.close());

  it.each(['loopback', 'localhost', 'metadata', 'v6'])('refuses %s', async (name) => {
    const res = await server.request(name);
    expect(res.text).toMatch(/^TypeError: .*refused/);
  });

  it('classifies addresses', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd12::1', '::ffff:127.0.0.1']) expect(isPrivateAddress(a), a).toBe(true);
    for (const a of ['1.1.1.1', '93.184.216.34', '2606:4700::1111', '172.32.0.1']) expect(isPrivateAddress(a), a).toBe(false);
  });
});
