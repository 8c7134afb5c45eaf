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
