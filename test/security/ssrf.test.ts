// SSRF through redirects: an allowed origin that redirects a worker's fetch to loopback, the
// host's own addresses or another internal service must not get it there, whatever form the
// address takes. The "public" origin here is a loopback server that only the operator's allowance
// (exactly its host:port) lets workers reach; every other loopback port stays refused.
import http from 'node:http';
import { networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { isOwnAddress, isPrivateAddress, isRefusedAddress } from '../../bindings/fetch/address-policy.js';

function listen(handler: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })));
}

const closeServer = (server: http.Server) => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });

let origin: { server: http.Server; port: number };
let internal: { server: http.Server; port: number };
/** requests that reached the internal service: must stay 0 */
let internalHits = 0;
let originHits = 0;
let upstream = '';
let server: TestServer;

beforeAll(async () => {
  internal = await listen((_req, res) => {
    internalHits++;
    res.end('internal secret');
  });
  origin = await listen((req, res) => {
    originHits++;
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/to') return res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: url.searchParams.get('target')! }).end();
    if (url.pathname === '/loop') return res.writeHead(302, { location: '/loop' }).end();
    if (url.pathname === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => res.writeHead(200, { 'x-method': req.method!, 'x-auth': String(req.headers.authorization) }).end(Buffer.concat(chunks)));
      return;
    }
    res.end('public ok');
  });
  upstream = `http://127.0.0.1:${origin.port}`;
  const probe = `export default { async fetch(request) {
    const { target, status, method, redirect } = Object.fromEntries(new URL(request.url).searchParams);
    const init = { method: method || 'GET', redirect: redirect || 'follow' };
    if (init.method === 'POST') init.body = 'payload';
    try {
      const r = await fetch(${JSON.stringify(upstream)} + '/to?status=' + (status || 302) + '&target=' + encodeURIComponent(target), init);
      return Response.json({ status: r.status, redirected: r.redirected, url: r.url, location: r.headers.get('location'), method: r.headers.get('x-method'), body: await r.text() });
    } catch (e) { return Response.json({ error: e.name + ': ' + e.message }) }
  } }`;
  server = await startTestServer(
    {
      probe,
      loop: `export default { async fetch() { try { await fetch(${JSON.stringify(upstream)} + '/loop'); return new Response('followed') } catch (e) { return new Response(e.name + ': ' + e.message) } } }`,
      neighbour: `export default { fetch() { return new Response('neighbour ok') } }`,
      // what a refused fetch's error says inside the worker, stack included
      stack: `export default { async fetch() { try { await fetch('http://127.0.0.1:1/'); return new Response('reached') } catch (e) { return new Response(e.stack) } } }`,
      // the class a refused fetch's error has inside the worker (Workers: a TypeError)
      'error-class': `export default { async fetch() { try { await fetch('http://127.0.0.1:1/'); return new Response('reached') } catch (e) { return Response.json({ typeError: e instanceof TypeError, error: e instanceof Error, name: e.name, proto: Object.getPrototypeOf(e) === TypeError.prototype }) } } }`,
    },
    { allowPrivateFetch: [`127.0.0.1:${origin.port}`] },
  );
});
afterAll(async () => {
  await server.close();
  await closeServer(origin.server);
  await closeServer(internal.server);
});

async function probe(target: string, extra: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const query = new URLSearchParams({ target, ...extra });
  const res = await server.request('probe', `/?${query}`);
  return JSON.parse(res.text);
}

describe('redirects to refused targets', () => {
  const forms = (port: number) => [
    `http://127.0.0.1:${port}/`,
    `http://127.1:${port}/`,
    `http://2130706433:${port}/`, // decimal
    `http://0x7f.0.0.1:${port}/`, // hex
    `http://0177.0.0.1:${port}/`, // octal
    `http://[::1]:${port}/`,
    `http://[::ffff:127.0.0.1]:${port}/`, // v4-mapped, written [::ffff:7f00:1] by WHATWG URL
    `http://[0:0:0:0:0:ffff:7f00:1]:${port}/`,
    `http://localhost:${port}/`,
    `http://169.254.169.254/latest/meta-data/`,
    `http://0.0.0.0:${port}/`,
  ];

  it.each([302, 307, 301, 303, 308])('fail the fetch with a TypeError on a %i, in every address form', async (status) => {
    for (const target of forms(internal.port)) {
      const out = await probe(target, { status: String(status) });
      expect(out.error, target).toMatch(/^TypeError: fetch to .* refused: private, loopback/);
    }
    expect(internalHits).toBe(0);
  });

  it('refuse with an error that carries none of the host\'s stack (its file paths stay on the host)', async () => {
    const res = await server.request('stack');
    expect(res.text).toBe("TypeError: fetch to 127.0.0.1:1 refused: private, loopback, link-local and this host's own addresses are not reachable from workers (cinder serve --allow-private-fetch allows them)");
  });

  it('refuse with a TypeError the worker can tell by its class', async () => {
    const res = await server.request('error-class');
    expect(JSON.parse(res.text)).toEqual({ typeError: true, error: true, name: 'TypeError', proto: true });
  });

  it('refuse a redirect to the data plane itself (another loopback port than the allowed one)', async () => {
    const out = await probe(`http://127.0.0.1:${server.port}/`);
    expect(out.error).toMatch(/^TypeError: fetch to 127\.0\.0\.1:\d+ refused/);
  });

  it('refuse a 307 that would resend a POST body to loopback', async () => {
    const out = await probe(`http://[::1]:${internal.port}/`, { status: '307', method: 'POST' });
    expect(out.error).toMatch(/^TypeError: .*refused/);
    expect(internalHits).toBe(0);
  });

  it('refuse non-HTTP redirect targets', async () => {
    const out = await probe('file:///etc/passwd');
    expect(out.error).toMatch(/^TypeError: fetch failed: redirect to a file: URL/);
  });

  it('leave the neighbour untouched while the attack runs', async () => {
    const attacks = Array.from({ length: 20 }, () => probe(`http://127.0.0.1:${internal.port}/`));
    const neighbour = Array.from({ length: 40 }, () => server.request('neighbour'));
    const results = await Promise.all(neighbour);
    await Promise.all(attacks);
    expect(results.filter((r) => r.status !== 200 || r.text !== 'neighbour ok')).toHaveLength(0);
    expect(internalHits).toBe(0);
  });
});

describe('redirects that are allowed', () => {
  it('are followed within the allowed origin, as fetch does', async () => {
    const out = await probe(`${upstream}/plain`);
    expect(out).toMatchObject({ status: 200, redirected: true, url: `${upstream}/plain`, body: 'public ok' });
  });

  it('follow the Fetch spec for method and body: 303 turns a POST into a GET, 307 keeps it', async () => {
    expect(await probe(`${upstream}/echo`, { status: '303', method: 'POST' })).toMatchObject({ status: 200, method: 'GET', body: '' });
    expect(await probe(`${upstream}/echo`, { status: '307', method: 'POST' })).toMatchObject({ status: 200, method: 'POST', body: 'payload' });
    expect(await probe(`${upstream}/echo`, { status: '302', method: 'POST' })).toMatchObject({ status: 200, method: 'GET', body: '' });
  });

  it('stop after 20 hops with a TypeError', async () => {
    const before = originHits;
    const res = await server.request('loop');
    expect(res.text).toBe('TypeError: fetch failed: more than 20 redirects');
    expect(originHits - before).toBe(21);
  });

  it("redirect: 'manual' hands back the redirect itself, without following it", async () => {
    const out = await probe(`http://127.0.0.1:${internal.port}/`, { redirect: 'manual' });
    expect(out).toMatchObject({ status: 302, redirected: false, location: `http://127.0.0.1:${internal.port}/` });
    expect(internalHits).toBe(0);
  });

  it("redirect: 'error' fails the fetch with a TypeError", async () => {
    const out = await probe(`${upstream}/plain`, { redirect: 'error' });
    expect(out.error).toMatch(/^TypeError: fetch failed: redirect mode is "error"/);
  });
});

describe('address policy', () => {
  it('refuses IPv4 carried in IPv6 (mapped, compatible, NAT64, 6to4)', () => {
    for (const a of ['::ffff:7f00:1', '::ffff:127.0.0.1', '::7f00:1', '64:ff9b::a00:1', '2002:a9fe:a9fe::', '::ffff:a9fe:a9fe', 'fec0::1']) expect(isPrivateAddress(a), a).toBe(true);
    for (const a of ['::ffff:101:101', '64:ff9b::101:101', '2606:4700::1111', '2002:101:101::']) expect(isPrivateAddress(a), a).toBe(false);
  });

  it("refuses every address of the host's own interfaces, public ones included", () => {
    const mine = Object.values(networkInterfaces()).flat().filter((info) => info !== undefined);
    for (const info of mine) {
      expect(isOwnAddress(info!.address), info!.address).toBe(true);
      expect(isRefusedAddress(info!.address), info!.address).toBe(true);
    }
    expect(isRefusedAddress('1.1.1.1')).toBe(false);
  });
});
