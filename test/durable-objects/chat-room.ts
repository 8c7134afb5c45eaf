// The chat room the hibernation tests run (hibernation.test.ts, hibernation-dev.test.ts): a worker
// that sends each room to its Durable Object, which accepts WebSockets with the hibernation API,
// counts its constructions and handled messages in storage, keeps the history, and records closes.
export const CHAT = `
import { DurableObject } from 'cloudflare:workers';

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const room = env.ROOM.getByName(url.searchParams.get('room') ?? 'lobby');
    if (request.headers.get('Upgrade') === 'websocket') return room.fetch(request);
    return room.fetch('https://room' + url.pathname + url.search);
  },
};

export class Room extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('ping', 'pong'));
    // Counted in storage, so a test sees each construction (a hibernated object is re-created).
    ctx.blockConcurrencyWhile(async () => {
      await ctx.storage.put('constructed', ((await ctx.storage.get('constructed')) ?? 0) + 1);
    });
  }

  async fetch(request) {
    const url = new URL(request.url);
    if (request.headers.get('Upgrade') === 'websocket') {
      const user = url.searchParams.get('user') ?? 'anonymous';
      const pair = new WebSocketPair();
      this.ctx.acceptWebSocket(pair[1], ['room', 'user:' + user, 'room']);
      pair[1].serializeAttachment({ user, joined: new Date(0), seen: new Set(['hello']) });
      pair[1].send(JSON.stringify({ type: 'welcome', user, history: (await this.ctx.storage.get('history')) ?? [] }));
      return new Response(null, { status: 101, webSocket: pair[0] });
    }
    if (url.pathname === '/stats') {
      return Response.json({
        constructed: await this.ctx.storage.get('constructed'),
        handled: (await this.ctx.storage.get('handled')) ?? 0,
        closes: (await this.ctx.storage.get('closes')) ?? [],
        sockets: this.ctx.getWebSockets().length,
        tagged: this.ctx.getWebSockets('user:ann').length,
      });
    }
    if (url.pathname === '/errors') {
      const out = {};
      const pair = new WebSocketPair();
      try { this.ctx.acceptWebSocket(pair[1], Array.from({ length: 11 }, (_, i) => 't' + i)); } catch (e) { out.tooManyTags = e.message; }
      try { this.ctx.acceptWebSocket(pair[1], ['x'.repeat(257)]); } catch (e) { out.longTag = e.message.replace(/x+/, 'X'); }
      try { this.ctx.acceptWebSocket({}); } catch (e) { out.notSocket = e.constructor.name; }
      try { this.ctx.getTags(pair[1]); } catch (e) { out.tagsOfPlain = e.message; }
      this.ctx.acceptWebSocket(pair[1]);
      try { pair[1].accept(); } catch (e) { out.acceptAfter = e.message; }
      try { this.ctx.acceptWebSocket(pair[1]); } catch (e) { out.acceptTwice = e.message; }
      try { pair[1].serializeAttachment('x'.repeat(20000)); } catch (e) { out.bigAttachment = e.message; }
      out.emptyTags = this.ctx.getTags(pair[1]);
      out.autoResponse = [this.ctx.getWebSocketAutoResponse().request, this.ctx.getWebSocketAutoResponse().response];
      out.timestamp = this.ctx.getWebSocketAutoResponseTimestamp(pair[1]);
      this.ctx.setHibernatableWebSocketEventTimeout(5000);
      out.timeout = this.ctx.getHibernatableWebSocketEventTimeout();
      this.ctx.setHibernatableWebSocketEventTimeout();
      out.timeoutCleared = this.ctx.getHibernatableWebSocketEventTimeout();
      pair[1].close(1000, 'done');
      // Accepted sockets whose clients never connect are bounded (they hold host memory).
      for (let i = 0; i < 1100 && out.pendingAccepted === undefined; i++) {
        try { this.ctx.acceptWebSocket(new WebSocketPair()[1]); } catch (e) { out.pendingAccepted = i; out.pendingError = e.message; }
      }
      return Response.json(out);
    }
    return new Response('not found', { status: 404 });
  }

  async webSocketMessage(ws, message) {
    await this.ctx.storage.put('handled', ((await this.ctx.storage.get('handled')) ?? 0) + 1);
    const attachment = ws.deserializeAttachment();
    if (message === 'whoami') {
      ws.send(JSON.stringify({
        type: 'whoami',
        user: attachment.user,
        joinedIsDate: attachment.joined instanceof Date,
        seenIsSet: attachment.seen instanceof Set,
        tags: this.ctx.getTags(ws),
        constructed: await this.ctx.storage.get('constructed'),
        pingAnswered: this.ctx.getWebSocketAutoResponseTimestamp(ws) !== null,
        sockets: this.ctx.getWebSockets().length,
        sameObject: this.ctx.getWebSockets('user:' + attachment.user).includes(ws),
      }));
      return;
    }
    const history = (await this.ctx.storage.get('history')) ?? [];
    history.push({ from: attachment.user, text: message });
    await this.ctx.storage.put('history', history.slice(-20));
    for (const other of this.ctx.getWebSockets('room')) other.send(JSON.stringify({ type: 'message', from: attachment.user, text: message }));
  }

  async webSocketClose(ws, code, reason, wasClean) {
    const closes = (await this.ctx.storage.get('closes')) ?? [];
    closes.push({ user: ws.deserializeAttachment().user, code, reason, wasClean, left: this.ctx.getWebSockets().length });
    await this.ctx.storage.put('closes', closes);
  }
}
`;

// A first Durable Object event in a process uses 15-28 ms of CPU here (of the 50 ms default):
// a slower, loaded CI machine could cross it; this test is not about the CPU limit.
export const CHAT_METADATA = {
  bindings: [{ type: 'durable_object_namespace', name: 'ROOM', class_name: 'Room' }],
  migrations: { new_tag: 'v1', new_sqlite_classes: ['Room'] },
  limits: { cpu_ms: 1000 },
};

