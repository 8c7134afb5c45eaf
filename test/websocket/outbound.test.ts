// A worker's own WebSocket connections: fetch(url, { headers: { Upgrade: 'websocket' } }), under
// the outbound fetch address policy (loopback only when the server allows it) and counted as
// subrequests.
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { connect } from './helpers.js';

let upstream: WebSocketServer;
let port = 0;
const upstreamHeaders: Record<string, string | string[] | undefined>[] = [];

beforeAll(async () => {
  upstream = new WebSocketServer({ port: 0, host: '127.0.0.1', verifyClient: (info: { req: { url?: string } }) => !info.req.url?.startsWith('/deny') });
  upstream.on('connection', (ws, req) => {
    upstreamHeaders.push(req.headers);
    ws.on('message', (data, isBinary) => {
      if (isBinary) ws.send(Buffer.concat([Buffer.from([0]), data as Buffer]));
      else if (data.toString() === 'bye') ws.close(4001, 'upstream says bye');
      else ws.send(`upstream:${data}`);
    });
  });
  await new Promise((r) => upstream.once('listening', r));
  port = (upstream.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => upstream.close(() => r())));

const CLIENT = (path = '/') => `export default {
  async fetch(request) {
    const resp = await fetch('http://127.0.0.1:PORT${path}', { headers: { Upgrade: 'websocket', 'x-from': 'worker' } });
    const ws = resp.webSocket;
    if (!ws) return Response.json({ status: resp.status, socket: false });
    ws.accept();
    const got = [];
    const closed = new Promise((resolve) => ws.addEventListener('close', (e) => resolve(e.code + ' ' + e.reason)));
    const next = () => new Promise((resolve) => ws.addEventListener('message', (e) => resolve(e.data), { once: true }));
    let reply = next();
    ws.send('hello');
    got.push(await reply);
    reply = next();
    ws.send(new Uint8Array([7, 8]));
    got.push([...new Uint8Array(await reply)]);
    ws.send('bye');
    const close = await closed;
    return Response.json({ status: resp.status, got, close, readyState: ws.readyState });
  },
};`;

function worker(code: string, limits?: Record<string, number>) {
  return { code: code.replaceAll('PORT', String(port)), limits };
}

describe('outbound WebSockets, loopback allowed for this upstream', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(
      {
        client: worker(CLIENT()),
        refused: worker(`export default { async fetch() {
          const r = await fetch('http://127.0.0.1:PORT/deny', { headers: { Upgrade: 'websocket' } });
          return Response.json({ status: r.status, socket: r.webSocket !== null });
        } }`),
        proxy: worker(`export default { fetch(request) {
          if (request.headers.get('upgrade') !== 'websocket') return new Response('upgrades only', { status: 426 });
          return fetch('http://127.0.0.1:PORT' + new URL(request.url).pathname, request);
        } }`),
        unaware: worker(`export default { async fetch() {
          try { await fetch('http://127.0.0.1:PORT/', { headers: { Upgrade: 'web' + 'socket' } }); return new Response('connected') }
          catch (e) { return new Response(e.name + ': ' + e.message) }
        } }`),
        twice: worker(`export default { async fetch() {
          const out = [];
          for (let i = 0; i < 2; i++) {
            try { const r = await fetch('http://127.0.0.1:PORT/', { headers: { Upgrade: 'websocket' } }); r.webSocket.accept(); r.webSocket.close(1000); out.push(r.status) }
            catch (e) { out.push(e.message) }
          }
          return Response.json(out);
        } }`, { subrequests: 1 }),
      },
      { allowPrivateFetch: [`127.0.0.1:${port}`] },
    );
  });
  afterAll(() => server.close());

  it('connects, sends and receives text and bytes, and sees the upstream\'s close', async () => {
    const res = await server.request('client');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ status: 101, got: ['upstream:hello', [0, 7, 8]], close: '4001 upstream says bye', readyState: 2 });
    expect(upstreamHeaders.at(-1)?.['x-from']).toBe('worker');
  });

  it('answers a refused upgrade as a plain response without a socket', async () => {
    const res = await server.request('refused');
    expect(JSON.parse(res.text)).toEqual({ status: 401, socket: false });
  });

  it('passes a client\'s WebSocket through to the upstream when the worker returns fetch(request)', async () => {
    const client = await connect(server.port, 'proxy', '/via-proxy', { protocols: ['p1'] });
    expect(upstreamHeaders.at(-1)?.['sec-websocket-protocol']).toBe('p1');
    client.send('through');
    client.send(Buffer.from([9, 9]));
    expect(await client.received(2)).toEqual(['upstream:through', Buffer.from([0, 9, 9])]);
    client.send('bye');
    expect(await client.closed).toEqual({ code: 4001, reason: 'upstream says bye' });
    expect(server.webSockets.stats.spliced).toBe(1);
  });

  it('refuses an upgrade by name in a worker that did not load WebSocket support', async () => {
    expect((await server.request('unaware')).text).toMatch(/^TypeError: fetch\(\) with "Upgrade: websocket" needs WebSocket support, which this worker did not load: Cinder loads it for workers whose code names WebSocketPair/);
  });

  it('counts each connection as a subrequest', async () => {
    const res = await server.request('twice');
    const [first, second] = JSON.parse(res.text);
    expect(first).toBe(101);
    expect(second).toMatch(/subrequest/i);
  });

  it('meters the connection\'s messages as invocations of the worker', async () => {
    const records: { worker: string; kind: string; bytesIn: number }[] = [];
    server.runtime.onInvocation((record) => records.push(record));
    await server.request('client');
    const events = records.filter((r) => r.worker === 'client' && r.kind === 'websocket');
    // the two replies (the close may still be on its way)
    expect(events.slice(0, 2).map((r) => r.bytesIn)).toEqual([14, 3]);
  });
});

describe('outbound WebSockets under the default address policy', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ client: worker(CLIENT()) });
  });
  afterAll(() => server.close());

  it('refuses a loopback address, naming why', async () => {
    const before = upstreamHeaders.length;
    const res = await server.request('client');
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/refused: private, loopback/);
    expect(upstreamHeaders.length).toBe(before);
  });
});
