// An isolate with open WebSockets outlives its idle time; it goes once its last socket closes; a
// redeploy closes its sockets (1012) and the next connection reaches the new version.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { connect, until } from './helpers.js';

const COUNTING = (version: string) => `let seen = 0;
export default {
  fetch(request) {
    if (request.headers.get('upgrade') !== 'websocket') return new Response('${version} seen ' + seen);
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener('message', () => server.send('${version} ' + ++seen));
    return new Response(null, { status: 101, webSocket: client });
  },
};`;

describe('WebSockets and the isolate\'s life', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ kept: COUNTING('v1'), moved: COUNTING('v1') }, { runtime: { idleTtlMs: 100 } });
  });
  afterAll(() => server.close());

  it('keeps an idle isolate while a socket is open, and lets it go after', async () => {
    const client = await connect(server.port, 'kept');
    client.send('a');
    expect(await client.received(1)).toEqual(['v1 1']);
    const idleBefore = server.runtime.evictions.idle;
    // Many idle periods pass without a request.
    await new Promise((r) => setTimeout(r, 800));
    expect(server.runtime.evictions.idle).toBe(idleBefore);
    expect(server.runtime.liveIsolates()).toBe(1);
    client.send('b');
    // the same isolate: its module state goes on
    expect(await client.received(2)).toEqual(['v1 1', 'v1 2']);
    client.ws.close(1000);
    await client.closed;
    await until(() => server.runtime.liveIsolates() === 0, 'the idle isolate to go');
    expect(server.runtime.evictions.idle).toBe(idleBefore + 1);
  });

  it('closes sockets with 1012 on a redeploy; the next connection reaches the new version', async () => {
    const client = await connect(server.port, 'moved');
    client.send('x');
    expect(await client.received(1)).toEqual(['v1 1']);
    server.deploy('moved', COUNTING('v2'));
    expect(await client.closed).toEqual({ code: 1012, reason: 'worker redeployed' });
    const next = await connect(server.port, 'moved');
    next.send('y');
    expect(await next.received(1)).toEqual(['v2 1']);
    next.ws.close();
  });
});

describe('WebSockets: pings from the host', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ echo: COUNTING('v1') }, { webSocketBounds: { pingIntervalMs: 50 } });
  });
  afterAll(() => server.close());

  it('keeps a client that answers pings, and cuts one that does not', async () => {
    const { WebSocket } = await import('ws');
    const open = (autoPong: boolean) =>
      new Promise<{ ws: InstanceType<typeof WebSocket>; pings: number[]; closed: Promise<number> }>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`, { headers: { host: 'echo.test' }, autoPong });
        const pings: number[] = [];
        ws.on('ping', () => pings.push(1));
        const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
        ws.once('open', () => resolve({ ws, pings, closed }));
        ws.once('error', reject);
      });
    const answering = await open(true);
    const silent = await open(false);
    // The silent one is cut (no close frame: 1006) once a ping of its has gone unanswered...
    expect(await silent.closed).toBe(1006);
    expect(silent.pings.length).toBeGreaterThan(0);
    // ...while the other has answered as many and is still served.
    await until(() => answering.pings.length >= 3, 'three pings');
    answering.ws.send('still');
    const reply = await new Promise((r) => answering.ws.once('message', (data) => r(data.toString())));
    expect(reply).toBe('v1 1');
    answering.ws.close();
  });
});
