// The WebSocket hibernation API, played the same way against Cinder and workerd
// (test/differential/hibernation.test.ts): a room object that accepts sockets with tags and
// attachments, answers "ping" by auto-response, broadcasts, reports limits' errors, and tells the
// others when one leaves; and the same room as objects wrote it before hibernation (accept() and
// listeners, sessions in memory).
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const ns = url.pathname === '/classic' ? env.CLASSIC : env.ROOM;
    const stub = ns.get(ns.idFromName(url.searchParams.get('room') ?? 'probe'));
    return stub.fetch(request);
  },
};

function attempt(fn) {
  try {
    const value = fn();
    return { ok: value === undefined ? null : value };
  } catch (e) {
    return { error: `${e.constructor.name}: ${e.message}` };
  }
}

export class Room {
  constructor(ctx, env) {
    this.ctx = ctx;
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('ping', 'pong'));
  }

  async fetch(request) {
    if (request.headers.get('Upgrade') !== 'websocket') return new Response('expected a WebSocket', { status: 426 });
    const user = new URL(request.url).searchParams.get('user');
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server, ['room', 'user:' + user, 'room']);
    server.serializeAttachment({ user, n: 1, when: new Date(0), set: new Set([1, 2]) });
    server.send(JSON.stringify({ welcome: user, sockets: this.ctx.getWebSockets().length, tags: this.ctx.getTags(server), readyState: server.readyState }));
    return new Response(null, { status: 101, webSocket: client });
  }

  webSocketMessage(ws, message) {
    const a = ws.deserializeAttachment();
    if (message instanceof ArrayBuffer) {
      ws.send(new Uint8Array(message).reverse());
      return;
    }
    switch (message) {
      case 'whoami': {
        const pair = this.ctx.getWebSocketAutoResponse();
        ws.send(JSON.stringify({
          user: a.user,
          n: a.n,
          date: a.when instanceof Date && a.when.getTime(),
          set: a.set instanceof Set && [...a.set],
          tags: this.ctx.getTags(ws),
          pinged: this.ctx.getWebSocketAutoResponseTimestamp(ws) instanceof Date,
          own: this.ctx.getWebSockets('user:' + a.user).length,
          same: this.ctx.getWebSockets('user:' + a.user)[0] === ws,
          all: this.ctx.getWebSockets().length,
          none: this.ctx.getWebSockets('nobody').length,
          readyState: ws.readyState,
          pair: pair && [pair.request, pair.response, Object.prototype.toString.call(pair)],
          timeout: this.ctx.getHibernatableWebSocketEventTimeout(),
        }));
        return;
      }
      case 'update':
        ws.serializeAttachment({ ...a, n: a.n + 1 });
        ws.send('n=' + ws.deserializeAttachment().n + ' fresh=' + (ws.deserializeAttachment() !== ws.deserializeAttachment()));
        return;
      case 'errors': {
        const [, other] = Object.values(new WebSocketPair());
        const out = {
          tooManyTags: attempt(() => this.ctx.acceptWebSocket(other, Array.from({ length: 11 }, (_, i) => 't' + i))),
          longTag: attempt(() => this.ctx.acceptWebSocket(other, ['x'.repeat(257)])),
          bigAttachment: attempt(() => ws.serializeAttachment('y'.repeat(20000))),
          acceptTwice: attempt(() => this.ctx.acceptWebSocket(ws)),
          bigAutoResponse: attempt(() => this.ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('p'.repeat(3000), 'q'))),
          bigTimeout: attempt(() => this.ctx.setHibernatableWebSocketEventTimeout(604800001)),
          timeout: attempt(() => {
            this.ctx.setHibernatableWebSocketEventTimeout(1234);
            const set = this.ctx.getHibernatableWebSocketEventTimeout();
            this.ctx.setHibernatableWebSocketEventTimeout(0);
            return [set, this.ctx.getHibernatableWebSocketEventTimeout()];
          }),
          attachmentKept: ws.deserializeAttachment().n,
        };
        ws.send(JSON.stringify(out));
        return;
      }
      case 'count':
        ws.send('sockets=' + this.ctx.getWebSockets('room').length);
        return;
      case 'close':
        ws.close(1000, 'done');
        return;
      default:
        for (const other of this.ctx.getWebSockets('room')) other.send(a.user + ': ' + message);
    }
  }

  webSocketClose(ws, code, reason, wasClean) {
    const a = ws.deserializeAttachment();
    for (const other of this.ctx.getWebSockets('room')) if (other !== ws) other.send(`left ${a.user} ${code} ${reason} ${wasClean}`);
    ws.close(code, reason);
  }
}

export class Classic {
  constructor(ctx) {
    this.ctx = ctx;
    this.sessions = [];
  }

  async fetch(request) {
    const user = new URL(request.url).searchParams.get('user');
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    this.sessions.push(server);
    server.addEventListener('message', async (event) => {
      if (event.data === 'close') {
        server.close(1000, 'done');
        return;
      }
      const seen = ((await this.ctx.storage.get('seen')) ?? 0) + 1;
      await this.ctx.storage.put('seen', seen);
      for (const s of this.sessions) s.send(`${user}: ${event.data} #${seen} ${server.readyState}`);
    });
    server.addEventListener('close', (event) => {
      this.sessions = this.sessions.filter((s) => s !== server);
      for (const s of this.sessions) s.send(`${user} left ${event.code} ${event.reason} ${event.wasClean}`);
      server.close(event.code, event.reason);
    });
    server.send(`welcome ${user}, ${this.sessions.length} here`);
    return new Response(null, { status: 101, webSocket: client });
  }
}
