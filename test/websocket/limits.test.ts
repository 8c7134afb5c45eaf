// WebSockets under pressure: a guest that floods a client that does not read, a client that floods
// a guest that is slow, and a message handler over its CPU limit. What the host holds is read from
// the WebSocket host's own counters (bytes, not timings).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { connect, until } from './helpers.js';

const MiB = 1024 * 1024;

const FLOODER = `export default {
  fetch(request) {
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener('message', (event) => {
      if (event.data !== 'flood') return;
      const chunk = new Uint8Array(512 * 1024);
      for (let i = 0; i < 64; i++) { chunk[0] = i; server.send(chunk); }
      server.send('done');
    });
    return new Response(null, { status: 101, webSocket: client });
  },
};`;

const SLOW = `let handled = 0;
export default {
  fetch(request) {
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener('message', (event) => {
      // a few ms of CPU per message (the clock stands still while code runs, as on Workers): well
      // under the limit, slower than the client sends
      let sum = 0;
      for (let i = 0; i < 3e6; i++) sum += i;
      handled += sum > 0 ? 1 : 0;
      if (event.data === 'last') server.send('handled ' + handled);
    });
    return new Response(null, { status: 101, webSocket: client });
  },
};`;

const BURNER = `export default {
  fetch(request) {
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener('message', (event) => {
      if (event.data === 'burn') { for (;;) {} }
      server.send('ok ' + event.data);
    });
    return new Response(null, { status: 101, webSocket: client });
  },
};`;

const ECHO = `export default {
  fetch(request) {
    if (request.headers.get('upgrade') !== 'websocket') return new Response('steady');
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener('message', (event) => server.send(event.data));
    return new Response(null, { status: 101, webSocket: client });
  },
};`;

const CHATTY = `export default {
  fetch(request) {
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener('message', () => {
      for (let i = 0; i < 5000; i++) server.send(String(i % 10));
      server.send('end');
    });
    return new Response(null, { status: 101, webSocket: client });
  },
};`;

describe('WebSockets: bounded buffering', () => {
  let server: TestServer;
  beforeAll(async () => {
    // The flood copies 32 MiB out in one handler, near the default 50 ms of CPU here: a loaded
    // machine crossed it (the isolate was recycled, the flood cut). The test is about buffering.
    server = await startTestServer({ flooder: { code: FLOODER, limits: { cpuMs: 1000 } }, slow: SLOW, chatty: CHATTY });
  });

  it('delivers many small messages sent at once, all of them, in order', async () => {
    const client = await connect(server.port, 'chatty');
    client.send('go');
    const messages = await client.received(5001);
    expect(messages.slice(0, 12)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '1']);
    expect(messages[5000]).toBe('end');
    client.ws.close();
  });
  afterAll(() => server.close());

  it('a guest flooding a client that does not read queues on its own heap, not the host\'s', async () => {
    const client = await connect(server.port, 'flooder');
    client.ws.pause(); // reads nothing from here on
    client.send('flood');
    const { stats, bounds } = server.webSockets;
    // The socket's kernel buffers fill, then what the host holds reaches its bound...
    await until(() => stats.bufferedOutBytes >= bounds.sendHighWaterBytes, 'the host to hold its bound');
    // ...and goes no further, though the guest sent 32 MiB.
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 10));
      expect(stats.bufferedOutBytes).toBeLessThanOrEqual(bounds.sendHighWaterBytes + MiB);
    }
    expect(stats.peakBufferedOutBytes).toBeLessThanOrEqual(bounds.sendHighWaterBytes + MiB);
    expect(stats.bytesOut).toBeLessThan(32 * MiB);
    // Nothing is lost: once the client reads, every message arrives, in order.
    client.ws.resume();
    const messages = await client.received(65);
    expect(messages.slice(0, 64).map((m) => (m as Buffer)[0])).toEqual([...Array(64).keys()]);
    expect(messages[64]).toBe('done');
    client.ws.close();
  });

  it('a client flooding a slow guest is read no faster than the guest handles it', async () => {
    const client = await connect(server.port, 'slow');
    const { stats, bounds } = server.webSockets;
    const payload = 'y'.repeat(256 * 1024);
    for (let i = 0; i < 99; i++) client.send(payload); // ~25 MiB
    client.send('last');
    expect(await client.received(1)).toEqual(['handled 100']);
    expect(stats.readsPaused).toBeGreaterThan(0);
    expect(stats.peakQueuedInBytes).toBeLessThanOrEqual(bounds.receiveHighWaterBytes + MiB);
    client.ws.close();
  });
});

describe('WebSockets: a message handler over its memory limit', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      hog: {
        code: `const kept = [];
        export default { fetch() {
          const [client, server] = Object.values(new WebSocketPair());
          server.accept();
          server.addEventListener('message', (event) => {
            let i = 0;
            if (event.data === 'hog') for (;;) kept.push('x'.repeat(1 << 20) + (i++));
            server.send('ok');
          });
          return new Response(null, { status: 101, webSocket: client });
        } }`,
        limits: { memoryMb: 32, cpuMs: 20_000 },
      },
    });
  });
  afterAll(() => server.close());

  it('closes the socket with 1011 naming the memory limit; the worker serves the next one', async () => {
    const client = await connect(server.port, 'hog');
    client.send('hog');
    const closed = await client.closed;
    expect(closed.code).toBe(1011);
    expect(closed.reason).toContain('memory');
    const next = await connect(server.port, 'hog');
    next.send('hi');
    expect(await next.received(1)).toEqual(['ok']);
    next.ws.close();
  });
});

describe('WebSockets: a message handler over its CPU limit', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ burner: { code: BURNER, limits: { cpuMs: 50 } }, steady: ECHO });
  });
  afterAll(() => server.close());

  it('closes that isolate\'s sockets with 1011; other workers and their sockets carry on', async () => {
    const victim = await connect(server.port, 'burner');
    const sibling = await connect(server.port, 'burner');
    const neighbour = await connect(server.port, 'steady');
    victim.send('warm');
    expect(await victim.received(1)).toEqual(['ok warm']);

    victim.send('burn');
    let failures = 0;
    let served = 0;
    const closed = Promise.all([victim.closed, sibling.closed]);
    let done = false;
    void closed.then(() => (done = true));
    while (!done || served < 20) {
      const res = await server.request('steady');
      if (res.status === 200 && res.text === 'steady') served++;
      else failures++;
    }
    const [victimClose, siblingClose] = await closed;
    expect(victimClose.code).toBe(1011);
    expect(siblingClose.code).toBe(1011);
    expect(victimClose.reason).toContain('CPU');
    expect(failures).toBe(0);

    neighbour.send('still here');
    expect(await neighbour.received(1)).toEqual(['still here']);
    // The worker itself is not broken: a new socket gets a new isolate.
    const again = await connect(server.port, 'burner');
    again.send('after');
    expect(await again.received(1)).toEqual(['ok after']);
    expect(server.logs.some((line) => line.limit === 'cpu' && line.worker === 'burner')).toBe(true);
    again.ws.close();
    neighbour.ws.close();
  });
});
