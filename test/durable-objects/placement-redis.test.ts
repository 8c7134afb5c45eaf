// Durable Objects placed across `cinder serve --redis` nodes (real redis-server, real nodes on
// loopback): an object lives in one process at a time and the others forward to it. A counter
// under 50 concurrent requests spread over two nodes loses no increment and exists once (one
// construction, one SQLite file on one node); RPC through the node that does not hold the object
// carries values and errors back; a WebSocket answered across nodes is relayed (both ways, with
// its close code), and the holder's death closes it with 1011; the
// internal endpoint answers only the nodes' secret; a node killed with -9 makes its objects fail
// with an error naming it (others keep working) and serves them again, data intact, once it is
// back; the operator moves a dead node's objects to another node; a holder cut off from Redis
// cannot write once its lease was taken over by another process of its node (fencing), and
// forwards to the new holder after it reconnects; a node that kept objects before it used Redis
// keeps their ids and data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { findRedisServer } from '../kv/fixtures.js';
import { admin, deploy, startNode, startRedis, stopNode, tempDir, until, type Node, type RestartableRedis } from '../scale/helpers.js';

const redisBinary = findRedisServer();
const LEASE_MS = 1500;

const WORKER = `
export class Counter {
  constructor(ctx, env) {
    this.ctx = ctx;
    // Counted in storage: every construction, on whichever node, adds one.
    ctx.blockConcurrencyWhile(async () => {
      await ctx.storage.put('constructions', ((await ctx.storage.get('constructions')) ?? 0) + 1);
    });
  }
  async fetch(request) {
    const url = new URL(request.url);
    const s = this.ctx.storage;
    if (url.pathname === '/inc') {
      const value = ((await s.get('count')) ?? 0) + 1;
      await s.put('count', value);
      return new Response(String(value));
    }
    if (url.pathname === '/stream') {
      const parts = ['one ', 'two ', 'three'];
      return new Response(new ReadableStream({ pull(c) { const p = parts.shift(); if (p === undefined) c.close(); else c.enqueue(new TextEncoder().encode(p)); } }), { headers: { 'x-streamed': 'yes' } });
    }
    if (url.pathname === '/ws') {
      const pair = new WebSocketPair();
      this.ctx.acceptWebSocket(pair[1]);
      return new Response(null, { status: 101, webSocket: pair[0] });
    }
    if (url.pathname === '/ws-accept') {
      // accept()-style: the socket lives in this object's isolate
      const pair = new WebSocketPair();
      pair[1].accept();
      pair[1].addEventListener('message', (event) => {
        if (event.data === 'close please') pair[1].close(4002, 'object closed it');
        else pair[1].send(typeof event.data === 'string' ? 'accepted ' + event.data : event.data);
      });
      return new Response(null, { status: 101, webSocket: pair[0] });
    }
    if (url.pathname === '/slow-write') {
      await (await fetch(url.searchParams.get('hold'))).text();
      await s.put('late', 'written');
      return new Response('wrote');
    }
    return Response.json({ count: (await s.get('count')) ?? 0, constructions: await s.get('constructions'), late: (await s.get('late')) ?? null });
  }
  webSocketMessage(ws, message) { ws.send('echo ' + message); }
  async add(a, b) { return { sum: a + b, when: new Date(0), list: new Map([['k', [1, 2]]]), bytes: new Uint8Array([7, 8]) }; }
  async fail() { throw new RangeError('object said no'); }
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const stub = env.COUNTER.get(env.COUNTER.idFromName(url.searchParams.get('name') ?? 'one'));
    try {
      if (url.pathname === '/rpc') {
        const out = await stub.add(2, 3);
        return Response.json({ sum: out.sum, when: out.when.toISOString(), list: [...out.list], bytes: [...out.bytes] });
      }
      if (url.pathname === '/rpc-fail') {
        try { await stub.fail(); return new Response('no error'); }
        catch (e) { return Response.json({ name: e.name, message: e.message, isRangeError: e instanceof RangeError }); }
      }
      if (url.pathname.startsWith('/ws')) return await stub.fetch(request);
      return await stub.fetch(new Request('https://object' + url.pathname + url.search));
    } catch (e) {
      return new Response(e.message, { status: 503 });
    }
  },
};
`;
// A first Durable Object event in a process uses 15-28 ms of CPU here (of the 50 ms default):
// a slower, loaded CI machine could cross it; this test is not about the CPU limit.
const METADATA = { bindings: [{ type: 'durable_object_namespace', name: 'COUNTER', class_name: 'Counter' }], migrations: { new_tag: 'v1', new_sqlite_classes: ['Counter'] }, limits: { cpu_ms: 1000 } };

async function call(node: Node, path: string): Promise<{ status: number; text: string }> {
  const res = await request(`${node.url}${path}`, { headers: { host: 'counter.example' }, headersTimeout: 30_000 });
  return { status: res.statusCode, text: await res.body.text() };
}

/** Object files (<data>/durable-objects/<namespace>/<id>.sqlite) in a node's data directory. */
function objectFiles(dataDir: string): string[] {
  const root = join(dataDir, 'durable-objects');
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => readdirSync(join(root, entry.name)).filter((file) => /^[0-9a-f]{64}\.sqlite$/.test(file)));
}

const nodeArgs = ['--no-supervisor', '--object-lease-ms', String(LEASE_MS), '--allow-private-fetch'];
let redis: RestartableRedis;
const started: Node[] = [];

async function node(nodeId: string, options: { redis?: string; dataDir?: string } = {}): Promise<Node> {
  const n = await startNode({ redis: options.redis ?? redis.url, nodeId, dataDir: options.dataDir, args: nodeArgs });
  started.push(n);
  return n;
}

beforeAll(async () => {
  if (!redisBinary) return;
  redis = await startRedis(redisBinary);
}, 30_000);

afterAll(async () => {
  for (const n of started) if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill('SIGKILL');
  await Promise.all(started.map((n) => n.exit));
  await redis?.cleanup();
});

describe.skipIf(!redisBinary)('Durable Objects placed across nodes on Redis', () => {
  let a: Node;
  let b: Node;

  beforeAll(async () => {
    a = await node('node-a');
    b = await node('node-b');
    const deployed = await deploy(a, 'counter', WORKER, METADATA);
    expect(deployed.status, deployed.text).toBe(201);
    // B hears of the deploy through pub/sub, with the class as A recorded it.
    expect(await until(async () => (await call(b, '/?name=warm-b')).status === 200, 10_000)).toBe(true);
  }, 240_000);

  it('50 concurrent increments spread over two nodes: none lost, one instance, storage on one node', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => call(i % 2 ? b : a, '/inc?name=shared')));
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(results.map((r) => Number(r.text)).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    for (const n of [a, b]) {
      const state = JSON.parse((await call(n, '/get?name=shared')).text);
      expect(state).toEqual({ count: 50, constructions: 1, late: null });
    }
    // warm-b and shared: each object's file is on exactly one node.
    const files = [...objectFiles(a.dataDir), ...objectFiles(b.dataDir)];
    expect(new Set(files).size).toBe(files.length);
  }, 60_000);

  it('the internal endpoint is a listener of its own and answers only the nodes\' secret', async () => {
    const client = new Redis(redis.url);
    try {
      const addresses = Object.values(await client.hgetall('cinder:{do-node:node-b}:addresses'));
      expect(addresses.length).toBeGreaterThan(0);
      let answered = 0;
      let upgradesAnswered = 0;
      for (const address of addresses) {
        expect(address).not.toBe(new URL(b.url).host);
        for (const authorization of [undefined, 'Bearer wrong', `Bearer ${await client.get('cinder:{do}:id-secret')}`]) {
          const res = await request(`http://${address}/durable-object-event`, { method: 'POST', headers: authorization ? { authorization } : {}, body: 'x' }).catch(() => null);
          // Old holders of a restarted node may be gone (refused); a live one refuses without the secret.
          if (res) {
            answered++;
            expect(res.statusCode).toBe(401);
            expect(await res.body.text()).toBe('not a Cinder node');
          }
          // The socket endpoint (an upgrade) refuses the same way, before any WebSocket opens.
          const upgrade = await new Promise<{ status: number; body: string } | null>((resolve) => {
            const ws = new WebSocket(`ws://${address}/durable-object-socket`, { headers: authorization ? { authorization } : {} });
            ws.on('open', () => {
              ws.terminate();
              resolve({ status: 101, body: '' });
            });
            ws.on('unexpected-response', (_req, r) => {
              let body = '';
              r.on('data', (chunk) => (body += chunk));
              r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
            });
            ws.on('error', () => resolve(null));
          });
          // (a holder that answered the POST is live: its upgrade endpoint must answer too, never be skipped)
          if (res || upgrade) {
            upgradesAnswered++;
            expect(upgrade).toEqual({ status: 401, body: 'not a Cinder node' });
          }
        }
      }
      expect(answered).toBeGreaterThanOrEqual(3);
      expect(upgradesAnswered).toBeGreaterThanOrEqual(answered);
    } finally {
      client.disconnect();
    }
    // On the data plane the path is a tenant's like any other.
    const res = await request(`${b.url}/durable-object-event`, { method: 'POST', body: 'x' });
    await res.body.text();
    expect(res.statusCode).toBe(404);
  }, 30_000);

  it('a WebSocket to an object held by another node works through the node that does not hold it', async () => {
    expect((await call(a, '/get?name=socket')).status).toBe(200); // held by A
    const open = (n: Node, path: string) =>
      new Promise<{ ws: WebSocket; messages: string[]; closed: Promise<{ code: number; reason: string }> }>((resolve, reject) => {
        const ws = new WebSocket(`${n.url.replace('http', 'ws')}${path}?name=socket`, { headers: { host: 'counter.example' } });
        const messages: string[] = [];
        const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: String(reason) })));
        ws.on('message', (data, isBinary) => messages.push(isBinary ? `binary:${[...(data as Buffer)].join(',')}` : String(data)));
        ws.on('open', () => resolve({ ws, messages, closed }));
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => reject(new Error(`${res.statusCode} ${body}`)));
        });
        ws.on('error', () => {});
      });
    const onHolder = await open(a, '/ws');
    const throughB = await open(b, '/ws');
    onHolder.ws.send('from a');
    throughB.ws.send('from b');
    throughB.ws.send(Buffer.from([1, 2, 3]));
    expect(await until(() => onHolder.messages.length === 1 && throughB.messages.length === 2, 10_000)).toBe(true);
    expect(onHolder.messages).toEqual(['echo from a']);
    // (a binary message reaches webSocketMessage as an ArrayBuffer: 'echo ' + it is its text form)
    expect(throughB.messages).toEqual(['echo from b', 'echo [object ArrayBuffer]']);
    // The client's close is answered with its code and reason, and crosses to the object.
    throughB.ws.close(4001, 'bye from b');
    expect(await throughB.closed).toEqual({ code: 4001, reason: 'bye from b' });
    onHolder.ws.close();
    await onHolder.closed;

    // An upgrade the object answers without a WebSocket: its response comes back as it is.
    await expect(open(b, '/ws-none')).rejects.toThrow(/^200 \{"count":0,/);

    // An object that accept()s its socket (held by its isolate): binary both ways, and the
    // object's own close code and reason reach the client through B.
    const accepted = await open(b, '/ws-accept');
    accepted.ws.send('one');
    accepted.ws.send(Buffer.from([9, 8, 7]));
    expect(await until(() => accepted.messages.length === 2, 10_000)).toBe(true);
    expect(accepted.messages).toEqual(['accepted one', 'binary:9,8,7']);
    accepted.ws.send('close please');
    expect(await accepted.closed).toEqual({ code: 4002, reason: 'object closed it' });
  }, 30_000);

  it('RPC through the node that does not hold the object carries values and errors back', async () => {
    expect((await call(a, '/get?name=rpc')).status).toBe(200); // now held by A
    const before = objectFiles(a.dataDir).length + objectFiles(b.dataDir).length;
    const out = await call(b, '/rpc?name=rpc');
    expect(out.status, out.text).toBe(200);
    expect(JSON.parse(out.text)).toEqual({ sum: 5, when: '1970-01-01T00:00:00.000Z', list: [['k', [1, 2]]], bytes: [7, 8] });
    // A streamed response crosses whole.
    expect(await call(b, '/stream?name=rpc')).toEqual({ status: 200, text: 'one two three' });
    const failed = await call(b, '/rpc-fail?name=rpc');
    expect(JSON.parse(failed.text)).toEqual({ name: 'RangeError', message: 'object said no', isRangeError: true });
    expect(objectFiles(a.dataDir).length + objectFiles(b.dataDir).length).toBe(before);
    expect(JSON.parse((await call(b, '/get?name=rpc')).text).constructions).toBe(1);
  }, 30_000);

  it('a node killed with -9: its objects fail naming it, others keep working, and come back with it', async () => {
    const dataDir = a.dataDir;
    for (let i = 0; i < 3; i++) expect((await call(a, '/inc?name=homed-on-a')).status).toBe(200);
    a.proc.kill('SIGKILL');
    await a.exit;
    let last = { status: 0, text: '' };
    const named = await until(async () => {
      last = await call(b, '/inc?name=homed-on-a');
      return last.status === 503 && /node "node-a", which is unavailable/.test(last.text);
    }, 15_000, 100);
    expect(named, last.text).toBe(true);
    // Objects held by B (warm-b was first called through B), and new ones, are not affected.
    expect((await call(b, '/inc?name=warm-b')).text).toBe('1');
    expect((await call(b, '/inc?name=fresh-on-b')).text).toBe('1');
    // Node A back on its data directory: its objects are served again, nothing lost.
    a = await node('node-a', { dataDir });
    const back = await call(b, '/get?name=homed-on-a');
    expect(back.status, back.text).toBe(200);
    expect(JSON.parse(back.text).count).toBe(3);
  }, 120_000);

  it('the operator moves a dead node\'s objects to another node (refused while it lives)', async () => {
    expect((await call(a, '/inc?name=moved')).text).toBe('1'); // held by A
    const alive = await admin(b, 'POST', '/durable-objects/nodes/node-a/reassign', JSON.stringify({ to: 'node-b' }));
    expect(alive.status).toBe(409);
    expect(alive.json().error).toMatch(/node "node-a" has a live process/);
    a.proc.kill('SIGKILL');
    await a.exit;
    expect(await until(async () => /node "node-a", which is unavailable/.test((await call(b, '/get?name=moved')).text), 15_000, 100)).toBe(true);
    const moved = await admin(b, 'POST', '/durable-objects/nodes/node-a/reassign', JSON.stringify({ to: 'node-b' }));
    expect(moved.status, moved.text).toBe(200);
    expect(moved.json()).toEqual({ node: 'node-a', movedTo: 'node-b' });
    // B takes it over at its next event; the data stayed on A's disk (not copied), so it starts empty.
    const served = await call(b, '/inc?name=moved');
    expect(served.status, served.text).toBe(200);
    expect(served.text).toBe('1');
    const bFiles = objectFiles(b.dataDir).length;
    expect((await call(b, '/inc?name=homed-on-a')).text).toBe('1');
    expect(objectFiles(b.dataDir).length).toBe(bFiles + 1);
    expect((await admin(b, 'DELETE', '/durable-objects/nodes/node-a/reassign')).json()).toEqual({ node: 'node-a', movedTo: null });
    // Bad input is refused naming what to send.
    const bad = await admin(b, 'POST', '/durable-objects/nodes/node-b/reassign', '{}');
    expect(bad.status).toBe(400);
    expect(bad.json().error).toMatch(/"to" must be the id of the node/);
  }, 120_000);
});

/** A TCP proxy to Redis that the test can cut (a network partition between one node and Redis). */
async function redisProxy(target: number) {
  const sockets = new Set<net.Socket>();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) return client.destroy();
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    heal() {
      cut = false;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(!redisBinary)('fencing: a holder that lost its lease', () => {
  it('cannot write after another process of its node took the object over, and forwards to it once back', async () => {
    const proxy = await redisProxy(redis.port);
    // Two processes of one node (same node id, same data directory), as --processes 2 runs;
    // the first reaches Redis through a proxy the test can cut.
    const dataDir = tempDir('cinder-do-fence-');
    const first = await node('node-f', { redis: proxy.url, dataDir });
    const second = await node('node-f', { dataDir });
    expect((await deploy(second, 'counter', WORKER, METADATA)).status).toBe(201);
    expect(await until(async () => (await call(first, '/inc?name=fenced')).status === 200, 10_000)).toBe(true);

    // An event on the holder waits on a fetch the test holds open...
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let fetched!: () => void;
    const arrived = new Promise<void>((resolve) => (fetched = resolve));
    const hold = http.createServer((_req, res) => {
      fetched();
      void held.then(() => res.end('go'));
    });
    await new Promise<void>((resolve) => hold.listen(0, '127.0.0.1', resolve));
    const holdUrl = `http://127.0.0.1:${(hold.address() as AddressInfo).port}/`;
    const slow = call(first, `/slow-write?name=fenced&hold=${encodeURIComponent(holdUrl)}`);
    await arrived;

    // ...while it is cut off from Redis. Once its lease has run out by its own clock it refuses
    // the object (and what is forwarded to it)...
    proxy.cut();
    slow.catch(() => {});
    let refused = { status: 0, text: '' };
    expect(await until(async () => (refused = await call(first, '/get?name=fenced')).status === 503, 15_000, 100), refused.text).toBe(true);
    // (refused when located, or, for an event that was already in, when its answer would leave)
    expect(refused.text).toMatch(/node "node-f"(\) lost its Durable Object lease with Redis| cannot reach Redis)/);
    // ...and once Redis expires it too, the node's other process takes the object over.
    let taken = { status: 0, text: '' };
    expect(await until(async () => (taken = await call(second, '/inc?name=fenced')).status === 200, 15_000, 100), taken.text).toBe(true);
    expect(taken.text).toBe('2');
    // ...and the write its old event makes now fails: nothing reaches the object's storage.
    release();
    const stale = await slow;
    expect(stale.status).toBe(503);
    expect(stale.text).toMatch(/lost its Durable Object lease/);
    const state = JSON.parse((await call(second, '/get?name=fenced')).text);
    // Taken over: constructed again there from storage (the count it had). Once when the first
    // attempt there succeeds; on a loaded machine an attempt that constructed it and then failed
    // (the lease still being settled) makes it again on the next: what matters is no stale write.
    expect({ count: state.count, late: state.late }).toEqual({ count: 2, late: null });
    expect(state.constructions).toBeGreaterThanOrEqual(2);

    // Back in touch with Redis, the old holder forwards to the new one instead of serving its copy.
    proxy.heal();
    let after = { status: 0, text: '' };
    expect(await until(async () => (after = await call(first, '/inc?name=fenced')).status === 200, 15_000, 200), after.text).toBe(true);
    expect(after.text).toBe('3');
    expect(JSON.parse((await call(second, '/get?name=fenced')).text).count).toBe(3);
    hold.closeAllConnections();
    hold.close();
    await proxy.close();
    for (const n of [first, second]) await stopNode(n, false);
  }, 120_000);
});

describe.skipIf(!redisBinary)('a node that kept objects before it used Redis', () => {
  it('keeps its ids and data, and the other nodes reach them', async () => {
    const ownRedis = await startRedis(redisBinary!);
    const dataDir = tempDir('cinder-do-legacy-');
    try {
      const embedded = await startNode({ nodeId: 'old', dataDir, args: nodeArgs });
      started.push(embedded);
      expect((await deploy(embedded, 'counter', WORKER, METADATA)).status).toBe(201);
      for (let i = 1; i <= 2; i++) expect((await call(embedded, '/inc?name=legacy')).text).toBe(String(i));
      await stopNode(embedded, false);
      // The same data directory, now on Redis, and a second node that never saw it.
      const old = await node('old', { redis: ownRedis.url, dataDir });
      const other = await node('other', { redis: ownRedis.url });
      // Deployments were in the node's own store: deployed again, to Redis (tag v1 is applied).
      const again = await deploy(old, 'counter', WORKER, METADATA);
      expect(again.status, again.text).toBe(201);
      expect(await until(async () => (await call(other, '/?name=warm')).status === 200, 10_000)).toBe(true);
      expect((await call(old, '/get?name=legacy')).text).toMatch(/"count":2/);
      const viaOther = await call(other, '/inc?name=legacy');
      expect(viaOther.status, viaOther.text).toBe(200);
      expect(viaOther.text).toBe('3');
      for (const n of [old, other]) await stopNode(n, false);
    } finally {
      await ownRedis.cleanup();
    }
  }, 120_000);
});
