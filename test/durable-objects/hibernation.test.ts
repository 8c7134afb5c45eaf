// The WebSocket hibernation API through a real `cinder serve` (in-process) and real `ws` clients:
// a chat room on a Durable Object whose sockets the host holds, so the object is evicted while they
// stay open and re-created (constructor again, storage, tags and attachments intact) by the next
// message; the auto-response answered without running the object; webSocketClose on a client's
// close; limits and errors with workerd's words; each event metered as an invocation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';
import { connect, until, type Client } from '../websocket/helpers.js';
import { CHAT, CHAT_METADATA } from './chat-room.js';

let cinder: TestCinder;
const IDLE_MS = 1000;

async function deploy(name: string, code: string, metadata: Record<string, unknown>) {
  return cinder.admin('PUT', `/workers/${name}`, { body: multipart({ main_module: 'index.js', ...metadata }, { 'index.js': code }) });
}

function parsed(client: Client, index: number): Record<string, any> {
  return JSON.parse(String(client.messages[index]));
}

async function stats(room: string): Promise<Record<string, any>> {
  const res = await cinder.get('chat.test', `/stats?room=${room}`);
  expect(res.status, res.text).toBe(200);
  return JSON.parse(res.text);
}

beforeAll(async () => {
  // Idle for 1 s: the tests wait for hibernation, and count constructions between steps that a
  // loaded machine can space by a few hundred ms (at 300 ms a room could hibernate between two).
  cinder = await startCinder({ durableObjects: { idleMs: IDLE_MS } });
  const res = await deploy('chat', CHAT, CHAT_METADATA);
  expect(res.status, res.text).toBe(201);
});

afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('WebSocket hibernation', () => {
  it('runs a chat room: two real clients see each other, hibernation frees the object, a message wakes it with tags and attachment intact', async () => {
    const objects = cinder.server.runtime.objects();
    const port = cinder.server.port;
    const ann = await connect(port, 'chat', '/?room=r1&user=ann');
    const bob = await connect(port, 'chat', '/?room=r1&user=bob');
    expect(parsed(ann, 0)).toEqual({ type: 'welcome', user: 'ann', history: [] });
    expect(parsed(bob, 0)).toEqual({ type: 'welcome', user: 'bob', history: [] });

    ann.send('hello from ann');
    await Promise.all([ann.received(2), bob.received(2)]);
    expect(parsed(bob, 1)).toEqual({ type: 'message', from: 'ann', text: 'hello from ann' });
    expect(parsed(ann, 1)).toEqual({ type: 'message', from: 'ann', text: 'hello from ann' });
    bob.send('hi ann');
    await Promise.all([ann.received(3), bob.received(3)]);
    expect(parsed(ann, 2)).toEqual({ type: 'message', from: 'bob', text: 'hi ann' });

    // Idle: the object is evicted (its isolate freed) while both sockets stay open.
    await until(() => objects.liveCount === 0, 'the room to hibernate');
    const metrics = await cinder.admin('GET', '/metrics');
    expect(metrics.text).toMatch(/^cinder_durable_objects_live(\{[^}]*\})? 0$/m);
    expect(ann.ws.readyState).toBe(ann.ws.OPEN);
    expect(bob.ws.readyState).toBe(bob.ws.OPEN);

    // A message re-creates it: the constructor ran a second time; tags and attachment survived.
    ann.send('whoami');
    await ann.received(4);
    expect(parsed(ann, 3)).toEqual({ type: 'whoami', user: 'ann', joinedIsDate: true, seenIsSet: true, tags: ['room', 'user:ann'], constructed: 2, pingAnswered: false, sockets: 2, sameObject: true });
    // And the room still works after waking: bob hears ann.
    ann.send('still here');
    await bob.received(4);
    expect(parsed(bob, 3)).toEqual({ type: 'message', from: 'ann', text: 'still here' });

    ann.ws.close();
    bob.ws.close();
    await Promise.all([ann.closed, bob.closed]);
  });

  it('answers the auto-response without running the object', async () => {
    const objects = cinder.server.runtime.objects();
    const port = cinder.server.port;
    const carl = await connect(port, 'chat', '/?room=r2&user=carl');
    await carl.received(1);
    await until(() => objects.liveCount === 0, 'the room to hibernate');
    const records: { kind: string; worker: string; bytesIn: number; trigger?: unknown }[] = [];
    cinder.server.runtime.onInvocation((record) => records.push(record));
    const createdBefore = objects.created;
    for (let i = 0; i < 5; i++) {
      carl.send('ping');
      await carl.received(2 + i);
      expect(String(carl.messages[1 + i])).toBe('pong');
    }
    // Not one event reached the object: it was not re-created, no invocation ran.
    expect(objects.created).toBe(createdBefore);
    expect(objects.liveCount).toBe(0);
    expect(records.filter((r) => r.kind === 'durable-object')).toHaveLength(0);
    // The next real message wakes it: its handler count shows no ping ever ran it.
    carl.send('whoami');
    await carl.received(7);
    expect(parsed(carl, 6)).toMatchObject({ user: 'carl', constructed: 2, pingAnswered: true });
    const after = await stats('r2');
    expect(after.handled).toBe(1);
    // That message was an invocation of its own, metered as the object's event, its bytes counted in.
    const message = records.find((r) => r.kind === 'durable-object' && r.worker === 'chat' && (r.trigger as { url?: string } | undefined)?.url === 'durable-object://Room/message');
    expect(message, JSON.stringify(records)).toMatchObject({ bytesIn: 'whoami'.length, trigger: { method: 'WEBSOCKET' } });
    carl.ws.close();
    await carl.closed;
  });

  it('delivers webSocketClose when a client closes (waking the hibernated object), and forgets the socket', async () => {
    const port = cinder.server.port;
    const ann = await connect(port, 'chat', '/?room=r3&user=ann');
    const dan = await connect(port, 'chat', '/?room=r3&user=dan');
    await Promise.all([ann.received(1), dan.received(1)]);
    expect(await stats('r3')).toMatchObject({ sockets: 2, tagged: 1, constructed: 1 });
    // Hibernated first: the close re-creates the object to deliver webSocketClose.
    await until(() => cinder.server.runtime.objects().liveCount === 0, 'the room to hibernate');
    dan.ws.close(4001, 'bye now');
    await dan.closed;
    let closes: any[] = [];
    for (const deadline = Date.now() + 20_000; closes.length === 0 && Date.now() < deadline; ) {
      closes = (await stats('r3')).closes;
      if (closes.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(closes).toEqual([{ user: 'dan', code: 4001, reason: 'bye now', wasClean: true, left: 1 }]);
    expect(await stats('r3')).toMatchObject({ sockets: 1, tagged: 1, constructed: 2 });
    ann.ws.close();
    await ann.closed;
  });

  it('refuses what Cloudflare refuses, with workerd\'s words', async () => {
    const res = await cinder.get('chat.test', '/errors?room=r4');
    expect(res.status, res.text).toBe(200);
    const out = JSON.parse(res.text);
    expect(out).toEqual({
      tooManyTags: 'a Hibernatable WebSocket cannot have more than 10 tags',
      longTag: '"X" is longer than the max tag length (256 characters).',
      notSocket: 'TypeError',
      tagsOfPlain: 'getTags() requires a WebSocket accepted with acceptWebSocket()',
      acceptAfter: 'This WebSocket was accepted with acceptWebSocket(); it cannot also be accept()ed.',
      acceptTwice: 'Cannot call `acceptWebSocket()` if the WebSocket was already accepted via `accept()`',
      bigAttachment: expect.stringMatching(/^A WebSocket 'attachment' cannot be larger than 16384 bytes\.'attachment' was \d+ bytes\.$/),
      emptyTags: [],
      autoResponse: ['ping', 'pong'],
      timestamp: null,
      timeout: 5000,
      timeoutCleared: null,
      pendingAccepted: 1023,
      pendingError: expect.stringMatching(/^this Durable Object has 1024 accepted WebSockets whose clients have not connected yet/),
    });
  });
});

const SPINNER = `
export default {
  async fetch(request, env) {
    return env.SPIN.get(env.SPIN.idFromName('one')).fetch(request);
  },
};
export class Spin {
  constructor(ctx) { this.ctx = ctx; }
  async fetch(request) {
    const [client, server] = Object.values(new WebSocketPair());
    const user = new URL(request.url).searchParams.get('user');
    if (user === 'timed') this.ctx.setHibernatableWebSocketEventTimeout(200);
    this.ctx.acceptWebSocket(server, [user]);
    return new Response(null, { status: 101, webSocket: client });
  }
  async webSocketMessage(ws, message) {
    if (message === 'spin') for (;;) {}
    if (message === 'sleep') await new Promise((resolve) => setTimeout(resolve, 5000));
    if (message === 'inc') {
      const n = (await this.ctx.storage.get('n')) ?? 0;
      await this.ctx.storage.put('n', n + 1);
      return;
    }
    if (message === 'count') {
      ws.send('n=' + (await this.ctx.storage.get('n')));
      return;
    }
    ws.send('echo ' + message + ' v' + VERSION);
  }
}
const VERSION = 1;
`;

describe('WebSocket hibernation: limits and redeploys', () => {
  it('ends an event over its CPU limit: that socket closes with 1011, the object comes back for the next event', async () => {
    const res = await deploy('spin', SPINNER, { bindings: [{ type: 'durable_object_namespace', name: 'SPIN', class_name: 'Spin' }], migrations: { new_tag: 'v1', new_classes: ['Spin'] }, limits: { cpu_ms: 50 } });
    expect(res.status, res.text).toBe(201);
    const port = cinder.server.port;
    const calm = await connect(port, 'spin', '/?user=calm');
    const busy = await connect(port, 'spin', '/?user=busy');
    const records: { kind: string; worker: string; outcome?: string }[] = [];
    cinder.server.runtime.onInvocation((record) => records.push(record as never));
    busy.send('spin');
    expect((await busy.closed).code).toBe(1011);
    expect(records.some((r) => r.worker === 'spin' && r.kind === 'durable-object' && r.outcome === 'exceededCpu')).toBe(true);
    // The other socket stayed open; its next message re-creates the object.
    calm.send('hi');
    expect(String((await calm.received(1))[0])).toBe('echo hi v1');
    calm.ws.close();
    await calm.closed;
  });

  it('delivers events one at a time through the input gate: concurrent read-modify-writes from two sockets lose nothing', async () => {
    const port = cinder.server.port;
    const [one, two] = await Promise.all([connect(port, 'spin', '/?user=gate1'), connect(port, 'spin', '/?user=gate2')]);
    for (let i = 0; i < 50; i++) {
      one.send('inc');
      two.send('inc');
    }
    // Each socket's events arrive in order: its 'count' comes after its own 50 increments.
    one.send('count');
    two.send('count');
    const counts = [String((await one.received(1))[0]), String((await two.received(1))[0])];
    expect(counts).toContain('n=100');
    one.ws.close();
    two.ws.close();
    await Promise.all([one.closed, two.closed]);
  });

  it('ends an event past setHibernatableWebSocketEventTimeout() as over its wall limit', async () => {
    const records: { kind: string; worker: string; outcome?: string }[] = [];
    cinder.server.runtime.onInvocation((record) => records.push(record as never));
    const timed = await connect(cinder.server.port, 'spin', '/?user=timed');
    timed.send('sleep');
    expect((await timed.closed).code).toBe(1011);
    expect(records.some((r) => r.worker === 'spin' && r.kind === 'durable-object' && r.outcome === 'exceededWall')).toBe(true);
  });

  it('closes hibernatable sockets with 1012 when the worker is redeployed', async () => {
    const port = cinder.server.port;
    const one = await connect(port, 'spin', '/?user=one');
    one.send('before');
    expect(String((await one.received(1))[0])).toBe('echo before v1');
    const res = await deploy('spin', SPINNER.replace('const VERSION = 1;', 'const VERSION = 2;'), { bindings: [{ type: 'durable_object_namespace', name: 'SPIN', class_name: 'Spin' }], migrations: { new_tag: 'v1', new_classes: ['Spin'] }, limits: { cpu_ms: 50 } });
    expect(res.status, res.text).toBe(201);
    expect((await one.closed).code).toBe(1012);
    const two = await connect(port, 'spin', '/?user=two');
    two.send('after');
    expect(String((await two.received(1))[0])).toBe('echo after v2');
    two.ws.close();
    await two.closed;
  });
});

// The pattern before hibernation: the object accept()s the server end and keeps its sessions in
// memory. Its isolate holds the sockets, so it is not evicted while one is open.
const CLASSIC = `
export default {
  async fetch(request, env) {
    return env.CLASSIC.get(env.CLASSIC.idFromName('room')).fetch(request);
  },
};
export class Classic {
  constructor(ctx) { this.ctx = ctx; this.sessions = []; }
  async fetch(request) {
    const user = new URL(request.url).searchParams.get('user');
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    this.sessions.push(server);
    server.addEventListener('message', async (event) => {
      const seen = ((await this.ctx.storage.get('seen')) ?? 0) + 1;
      await this.ctx.storage.put('seen', seen);
      for (const s of this.sessions) s.send(user + ': ' + event.data + ' #' + seen);
    });
    server.addEventListener('close', (event) => {
      this.sessions = this.sessions.filter((s) => s !== server);
      for (const s of this.sessions) s.send(user + ' left ' + event.code);
    });
    server.send('welcome ' + user + ', ' + this.sessions.length + ' here');
    return new Response(null, { status: 101, webSocket: client });
  }
}
`;

describe('WebSockets a Durable Object accept()s (no hibernation)', () => {
  it('serves a room from the object\'s memory, kept live while its sockets are open', async () => {
    const res = await deploy('classic', CLASSIC, { bindings: [{ type: 'durable_object_namespace', name: 'CLASSIC', class_name: 'Classic' }], migrations: { new_tag: 'v1', new_classes: ['Classic'] } });
    expect(res.status, res.text).toBe(201);
    const port = cinder.server.port;
    const ann = await connect(port, 'classic', '/?user=ann');
    expect(String((await ann.received(1))[0])).toBe('welcome ann, 1 here');
    const bob = await connect(port, 'classic', '/?user=bob');
    expect(String((await bob.received(1))[0])).toBe('welcome bob, 2 here');
    ann.send('hi');
    await Promise.all([ann.received(2), bob.received(2)]);
    expect(String(bob.messages[1])).toBe('ann: hi #1');
    // Longer than the idle time: an object holding sockets in its isolate stays.
    await new Promise((r) => setTimeout(r, IDLE_MS * 2.5));
    bob.send('still there?');
    await ann.received(3);
    expect(String(ann.messages[2])).toBe('bob: still there? #2');
    bob.ws.close(4002, 'gone');
    await bob.closed;
    await ann.received(4);
    expect(String(ann.messages[3])).toBe('bob left 4002');
    ann.ws.close();
    await ann.closed;
    // With no socket left, it is evicted like any idle object.
    await until(() => cinder.server.runtime.objects().liveCount === 0, 'the object to be evicted');
  });
});

describe('WebSocket hibernation across a restart of cinder serve', () => {
  const children: import('node:child_process').ChildProcess[] = [];
  const token = 'hibernation-restart-token-0123456789';

  afterAll(() => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('closes the sockets on shutdown, and the room (its storage) serves new connections after the restart', async () => {
    const { startServeProcess } = await import('../helpers/serve-process.js');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dataDir = mkdtempSync(join(tmpdir(), 'cinder-hibernation-'));
    try {
      const first = await startServeProcess(dataDir, token, children);
      const put = await fetch(`http://127.0.0.1:${first.adminPort}/workers/chat`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: multipart({ main_module: 'index.js', ...CHAT_METADATA }, { 'index.js': CHAT }) });
      expect(put.status, await put.text()).toBe(201);
      const ann = await connect(first.port, 'chat', '/?room=kept&user=ann');
      const bob = await connect(first.port, 'chat', '/?room=kept&user=bob');
      await Promise.all([ann.received(1), bob.received(1)]);
      ann.send('before the restart');
      await Promise.all([ann.received(2), bob.received(2)]);
      expect(parsed(bob, 1)).toEqual({ type: 'message', from: 'ann', text: 'before the restart' });

      first.child.kill('SIGTERM');
      // The host held the sockets: shutting down closes them (1001), as a code update would.
      expect((await ann.closed).code).toBe(1001);
      expect((await bob.closed).code).toBe(1001);
      await first.exited;

      const second = await startServeProcess(dataDir, token, children);
      const cat = await connect(second.port, 'chat', '/?room=kept&user=cat');
      const dan = await connect(second.port, 'chat', '/?room=kept&user=dan');
      await Promise.all([cat.received(1), dan.received(1)]);
      // The room's storage was kept: the history is there for the new connections.
      expect(parsed(cat, 0)).toEqual({ type: 'welcome', user: 'cat', history: [{ from: 'ann', text: 'before the restart' }] });
      dan.send('after the restart');
      await cat.received(2);
      expect(parsed(cat, 1)).toEqual({ type: 'message', from: 'dan', text: 'after the restart' });
      cat.ws.close();
      dan.ws.close();
      await Promise.all([cat.closed, dan.closed]);
      second.child.kill('SIGTERM');
      await second.exited;
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
