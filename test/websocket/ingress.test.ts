// WebSockets through the ingress: a worker answers an upgrade with a 101 and a WebSocketPair's
// client end; the host completes the handshake and relays frames both ways.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { connect, until } from './helpers.js';

const ECHO = `let lastClose = 'none';
export default {
  fetch(request) {
    if (new URL(request.url).pathname === '/last-close') return new Response(lastClose);
    if (request.headers.get('upgrade') !== 'websocket') return new Response('expected a websocket', { status: 426 });
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener('message', (event) => {
      if (typeof event.data === 'string') server.send('echo:' + event.data);
      else server.send(new Uint8Array(event.data).reverse());
    });
    server.addEventListener('close', (event) => {
      lastClose = event.code + ' ' + event.reason + ' ' + event.wasClean;
      server.close(); // (already answered by the host: no effect)
    });
    return new Response(null, { status: 101, webSocket: client });
  },
};`;

describe('WebSockets through the ingress', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ echo: ECHO });
  });
  afterAll(() => server.close());

  it('echoes to each client its own messages', async () => {
    const a = await connect(server.port, 'echo');
    const b = await connect(server.port, 'echo');
    a.send('hello from a');
    b.send('hello from b');
    a.send('again a');
    expect(await a.received(2)).toEqual(['echo:hello from a', 'echo:again a']);
    expect(await b.received(1)).toEqual(['echo:hello from b']);
    a.ws.close(1000);
    b.ws.close(1000);
    await Promise.all([a.closed, b.closed]);
  });
});

const BROADCAST = `const sockets = new Set();
export default {
  fetch(request) {
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    const name = new URL(request.url).searchParams.get('name');
    sockets.add(server);
    server.addEventListener('message', (event) => {
      for (const other of sockets) if (other !== server) other.send(name + ': ' + event.data);
    });
    server.addEventListener('close', () => sockets.delete(server));
    server.send('welcome ' + name + ', ' + (sockets.size - 1) + ' here before you');
    return new Response(null, { status: 101, webSocket: client });
  },
};`;

const COUNTER = `let seen = 0;
export default {
  fetch(request) {
    if (request.headers.get('upgrade') !== 'websocket') return new Response('seen ' + seen);
    const pair = new WebSocketPair();
    const server = pair[1];
    server.accept();
    server.addEventListener('message', (event) => server.send(String(++seen)));
    return new Response(null, { status: 101, webSocket: pair[0], headers: { 'x-chosen': 'yes', 'sec-websocket-protocol': 'chat.v2' } });
  },
};`;

describe('WebSockets: several clients, one isolate', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ room: BROADCAST, echo: ECHO });
  });
  afterAll(() => server.close());

  it('shows each client the others\' messages (a module-level Set of sockets)', async () => {
    const alice = await connect(server.port, 'room', '/?name=alice');
    expect(await alice.received(1)).toEqual(['welcome alice, 0 here before you']);
    const bob = await connect(server.port, 'room', '/?name=bob');
    expect(await bob.received(1)).toEqual(['welcome bob, 1 here before you']);
    alice.send('hi bob');
    expect(await bob.received(2)).toEqual(['welcome bob, 1 here before you', 'alice: hi bob']);
    bob.send('hi alice');
    expect(await alice.received(2)).toEqual(['welcome alice, 0 here before you', 'bob: hi alice']);
    expect(server.runtime.isolatesOf('room')).toBe(1);
    alice.ws.close();
    bob.ws.close();
  });

  it('relays binary messages as bytes', async () => {
    const client = await connect(server.port, 'echo');
    client.send(Buffer.from([1, 2, 3, 250]));
    const [reply] = await client.received(1);
    expect(Buffer.isBuffer(reply)).toBe(true);
    expect([...(reply as Buffer)]).toEqual([250, 3, 2, 1]);
    client.ws.close();
  });

  it('carries close codes and reasons both ways', async () => {
    const client = await connect(server.port, 'echo');
    client.ws.close(4321, 'client leaving');
    // The host answers a close frame at once with the same code, as workerd does.
    expect(await client.closed).toEqual({ code: 4321, reason: 'client leaving' });
    let seen = '';
    for (let i = 0; i < 100 && seen !== '4321 client leaving true'; i++) seen = (await server.request('echo', '/last-close')).text;
    expect(seen).toBe('4321 client leaving true');
  });
});

describe('WebSockets: what the worker answers', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      counter: COUNTER,
      plain: `export default { fetch() { return new Response('no sockets here', { status: 403 }) } }`,
      closer: `export default { fetch() {
        const [client, server] = Object.values(new WebSocketPair());
        server.accept();
        server.send('first');
        server.close(4000, 'done at once');
        return new Response(null, { status: 101, webSocket: client });
      } }`,
      echo: ECHO,
    });
  });
  afterAll(() => server.close());

  it('sends the worker\'s 101 headers and chosen subprotocol with the handshake', async () => {
    const client = await connect(server.port, 'counter', '/', { protocols: ['chat.v1', 'chat.v2'] });
    expect(client.ws.protocol).toBe('chat.v2');
    expect(client.headers['x-chosen']).toBe('yes');
    client.send('x');
    expect(await client.received(1)).toEqual(['1']);
    client.ws.close();
  });

  it('answers an upgrade with whatever else the worker returns', async () => {
    await expect(connect(server.port, 'plain')).rejects.toMatchObject({ status: 403, body: 'no sockets here' });
  });

  it('refuses a 101 to a request that asked for no upgrade', async () => {
    const res = await server.request('echo');
    expect(res.status).toBe(426);
    const plain = await server.request('counter', '/', { headers: { 'x-anything': '1' } });
    expect(plain.text).toBe('seen 1'); // the message of the test before
    // the worker answers 101 to everything: a plain GET gets a 500 naming why
    server.deploy('always', `export default { fetch() { const [c, s] = Object.values(new WebSocketPair()); s.accept(); return new Response(null, { status: 101, webSocket: c }) } }`);
    const refused = await server.request('always');
    expect(refused.status).toBe(500);
    expect(refused.text).toContain('did not contain the header "Upgrade: websocket"');
  });

  it('delivers what the worker sent before returning, then its close', async () => {
    const client = await connect(server.port, 'closer');
    expect(await client.closed).toEqual({ code: 4000, reason: 'done at once' });
    expect(client.messages).toEqual(['first']);
  });

  it('refuses a message over 1 MiB with 1009 and keeps serving others', async () => {
    const big = await connect(server.port, 'echo');
    big.send('x'.repeat(1024 * 1024 + 1));
    expect((await big.closed).code).toBe(1009);
    const ok = await connect(server.port, 'echo');
    ok.send('x'.repeat(1024 * 1024 - 16));
    const [reply] = await ok.received(1);
    expect((reply as string).length).toBe(1024 * 1024 - 16 + 5);
    ok.ws.close();
  });

  it('meters each message as an invocation of its own', async () => {
    const records: { kind: string; worker: string; bytesIn: number; outcome: string }[] = [];
    server.runtime.onInvocation((record) => records.push(record));
    server.deploy('metered', ECHO);
    const client = await connect(server.port, 'metered');
    client.send('one');
    client.send('three');
    client.send(Buffer.alloc(1000));
    await client.received(3);
    client.ws.close(1000);
    await client.closed;
    const events = records.filter((r) => r.worker === 'metered' && r.kind === 'websocket');
    await until(() => events.length === 5 || records.filter((r) => r.worker === 'metered' && r.kind === 'websocket').length === 5, 'the close event');
    events.splice(0, events.length, ...records.filter((r) => r.worker === 'metered' && r.kind === 'websocket'));
    // open, three messages, and the close
    expect(events.map((r) => r.bytesIn)).toEqual([0, 3, 5, 1000, 0]);
    expect(events.map((r) => r.outcome)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(records.filter((r) => r.worker === 'metered' && r.kind === 'fetch')).toHaveLength(1);
  });
});
