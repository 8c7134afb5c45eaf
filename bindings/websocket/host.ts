// The host half of WebSockets: the host's end of every socket whose other end is a guest's, on
// the `ws` package. Sockets come from two places: the ingress, when a worker answers an upgrade
// request with a 101 and the pair's client end (upgrade()), and a worker's outbound fetch with
// Upgrade: websocket (the ws.connect op, under the fetch address policy, counted as a subrequest).
//
// Each socket is a Relay between the network and its owner (contract.ts SocketOwner: the worker's
// isolate, or a Durable Object's hibernatable sockets, which outlive the object's isolate). Everything it buffers is bounded:
// - network to guest: messages up to MAX_WEBSOCKET_MESSAGE_BYTES (larger: closed with 1009 by
//   ws), handed to the owner one at a time, each an invocation of its own; past
//   receiveHighWaterBytes waiting, the relay stops reading the socket (TCP pushes back on the
//   client) until the guest catches up.
// - guest to network: the guest hands over one batch and waits for the answer, which comes once
//   the bytes not yet written to the socket are under sendHighWaterBytes; so a guest sending to a
//   client that does not read queues on its own heap (under its memory limit), not here. Past
//   sendHardLimitBytes (only reachable by a misbehaving guest half) the socket is closed with 1011.
// Pings go out every pingIntervalMs; a socket that has not answered the previous one is cut.
import type http from 'node:http';
import type { LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { OpCall, OpHandler, SocketLink, SocketOwner } from '../../src/runtime/contract.js';
import { chargeSubrequest } from '../../src/model/request-tree.js';
import { messagesOf, socketIdOf, type WebSocketMessage } from '../../src/model/websocket-messages.js';
import { MAX_WEBSOCKET_MESSAGE_BYTES, WEBSOCKET_OPS, type SocketEvent } from '../../protocol/wall.js';
import type { WebSocketConnectAnswer, WebSocketConnectRequest } from './protocol.js';

export interface WebSocketBounds {
  /** largest message either way (bytes) */
  maxMessageBytes: number;
  /** bytes handed to a socket and not yet written out, past which the guest's send waits */
  sendHighWaterBytes: number;
  /** ...and past which the socket is closed with 1011 */
  sendHardLimitBytes: number;
  /** bytes of received messages waiting for the guest, past which reading stops */
  receiveHighWaterBytes: number;
  pingIntervalMs: number;
  /** after a close frame is sent, how long the other end has to answer before the socket is cut */
  closeTimeoutMs: number;
  /** how long an outbound handshake may take */
  handshakeTimeoutMs: number;
}

export const DEFAULT_WEBSOCKET_BOUNDS: WebSocketBounds = {
  maxMessageBytes: MAX_WEBSOCKET_MESSAGE_BYTES,
  sendHighWaterBytes: 1024 * 1024,
  sendHardLimitBytes: 8 * 1024 * 1024,
  receiveHighWaterBytes: 2 * 1024 * 1024,
  pingIntervalMs: 30_000,
  closeTimeoutMs: 5_000,
  handshakeTimeoutMs: 10_000,
};

/** Where outbound connections may go: the fetch binding's address policy, handed in by the app. */
export interface OutboundPolicy {
  /** throws a TypeError naming why `url` (http: or https:) may not be reached */
  check(url: URL): void;
  /** resolves hostnames for the socket, refusing internal addresses */
  lookup: LookupFunction;
}

/** What the host holds and has done, for tests and metrics. */
export interface WebSocketStats {
  open: number;
  accepted: number;
  connected: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** bytes handed to sockets and not yet written out, now and at most */
  bufferedOutBytes: number;
  peakBufferedOutBytes: number;
  /** bytes of received messages waiting for guests, now and at most */
  queuedInBytes: number;
  peakQueuedInBytes: number;
  /** times a socket's reading was paused for a guest that fell behind */
  readsPaused: number;
  /** sockets closed because their owner went over a limit or away */
  closedByOwner: number;
  /** client sockets joined to a worker's outbound socket (passed through) */
  spliced: number;
}

/** Headers of a worker's 101 that are the handshake's own (ws writes them). */
const HANDSHAKE_HEADERS = new Set(['upgrade', 'connection', 'sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions', 'content-length', 'transfer-encoding', 'keep-alive']);
/** Request headers an outbound connection's handshake sets itself. */
const CLIENT_HANDSHAKE_HEADERS = new Set(['upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'host', 'content-length', 'transfer-encoding', 'keep-alive']);
const MAX_REFUSAL_BODY = 64 * 1024;

type Message = WebSocketMessage;

/** A message or the close of a connection, seen before its relay listened (WebSocketHost.adopt). */
export type EarlyEvent = { data: RawData; isBinary: boolean } | { close: number; reason: string };

class Relay implements SocketLink {
  private readonly queue: { event: SocketEvent; bytes: number }[] = [];
  private queuedBytes = 0;
  private delivering = false;
  private ownerGone = false;
  private closed = false;
  private unwritten = 0;
  private readonly waiters: (() => void)[] = [];
  private closeTimer: NodeJS.Timeout | null = null;
  answeredPing = true;
  /** the code the guest (or a spliced client) sees when the socket is cut without a close frame:
   *  1006, or 1011 for a connection to another process (its death is a server error there) */
  lostCode = 1006;
  /** set for a socket the guest may only pass on in a 101 (a Durable Object's, relayed from
   *  another process): its use by the guest is refused with these words, as a local one's is */
  passOnly: string | null = null;

  constructor(
    private readonly host: WebSocketHost,
    readonly ws: WebSocket,
    private readonly owner: SocketOwner,
    private readonly socketId: number,
    /** events wait here until the guest accepts (an outbound socket): it may pass it on instead */
    private held = false,
  ) {
    ws.on('message', this.onMessage);
    ws.on('close', this.onClose);
    ws.on('error', () => {
      // ws closes the socket after an error (a too-large message: 1009); 'close' follows
    });
    ws.on('pong', () => (this.answeredPing = true));
  }

  /** The socket is open: tell the guest end (its queued sends may go out), then relay. */
  start(announce: boolean): void {
    this.host.opened(this);
    if (announce) this.enqueue({ type: 'open' }, 0);
  }

  private readonly onMessage = (data: RawData, isBinary: boolean) => this.received(data, isBinary);
  private readonly onClose = (code: number, reason: Buffer) => this.remoteClosed(code, reason.toString('utf8'));

  /** Whether the guest may still pass this socket on (it never accepted it). */
  get passable(): boolean {
    return this.held && !this.closed && !this.ownerGone;
  }

  accept(): void {
    if (!this.held || this.passOnly !== null) return;
    this.held = false;
    if (this.queue.length && !this.delivering) void this.deliverAll();
  }

  /**
   * The guest passes this socket on (a 101 answering an upgrade with an outbound socket's
   * response): the relay lets go of it and hands back what arrived meanwhile, for the splice.
   */
  handOver(): { ws: WebSocket; pending: SocketEvent[]; lostCode: number } {
    this.ws.off('message', this.onMessage);
    this.ws.off('close', this.onClose);
    const pending = this.queue.splice(0).map((item) => item.event);
    this.host.queued(-this.queuedBytes);
    this.queuedBytes = 0;
    this.ownerGone = true;
    this.finish();
    this.owner.detach(this.socketId);
    return { ws: this.ws, pending, lostCode: this.lostCode };
  }

  /** What arrived on the socket before this relay listened (an adopted connection). */
  replay(early: EarlyEvent[]): void {
    for (const event of early) {
      if ('close' in event) this.remoteClosed(event.close, event.reason);
      else this.received(event.data, event.isBinary);
    }
  }

  // --- network to guest --------------------------------------------------------------------------

  private received(data: RawData, isBinary: boolean): void {
    if (this.ownerGone) return;
    const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const message = isBinary ? (buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer) : buffer.toString('utf8');
    this.host.stats.messagesIn++;
    this.host.stats.bytesIn += buffer.byteLength;
    this.enqueue({ type: 'message', data: message }, buffer.byteLength);
    if (this.queuedBytes > this.host.bounds.receiveHighWaterBytes && !this.ws.isPaused) {
      this.ws.pause();
      this.host.stats.readsPaused++;
    }
  }

  private enqueue(event: SocketEvent, bytes: number): void {
    this.queue.push({ event, bytes });
    this.queuedBytes += bytes;
    this.host.queued(bytes);
    if (!this.delivering && !this.held) void this.deliverAll();
  }

  private async deliverAll(): Promise<void> {
    this.delivering = true;
    try {
      while (this.queue.length && !this.ownerGone) {
        const { event, bytes } = this.queue.shift()!;
        try {
          await this.owner.deliver(this.socketId, event, bytes);
        } catch {
          // The owner could not take it (over a limit, gone): its dispose closes this socket.
          this.ownerLost(1011, 'worker could not handle the message');
        } finally {
          this.queuedBytes -= bytes;
          this.host.queued(-bytes);
          if (this.ws.isPaused && this.queuedBytes <= this.host.bounds.receiveHighWaterBytes / 2) this.ws.resume();
        }
        if (event.type === 'close' || event.type === 'error') this.owner.detach(this.socketId);
      }
    } finally {
      this.delivering = false;
    }
  }

  private remoteClosed(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.finish();
    if (this.ownerGone) return;
    // 1005: the close frame had no code; 1006: no close frame at all.
    if (code === 1006 && this.lostCode !== 1006) {
      this.enqueue({ type: 'close', code: this.lostCode, reason: 'the connection to the process holding the Durable Object was lost', wasClean: false }, 0);
      return;
    }
    this.enqueue({ type: 'close', code, reason, wasClean: code !== 1006 }, 0);
  }

  private finish(): void {
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    this.wake();
    this.host.closed(this);
  }

  // --- guest to network (SocketLink) --------------------------------------------------------------

  async send(messages: Message[]): Promise<void> {
    if (this.passOnly !== null) throw new TypeError(this.passOnly);
    if (this.closed || this.ownerGone || this.ws.readyState !== WebSocket.OPEN) return;
    for (const message of messages) {
      const size = typeof message === 'string' ? Buffer.byteLength(message) : message.byteLength;
      this.unwritten += size;
      this.host.buffered(size);
      this.host.stats.messagesOut++;
      this.host.stats.bytesOut += size;
      this.ws.send(typeof message === 'string' ? message : Buffer.from(message), { binary: typeof message !== 'string' }, () => {
        this.unwritten -= size;
        this.host.buffered(-size);
        if (this.unwritten <= this.host.bounds.sendHighWaterBytes) this.wake();
      });
    }
    if (this.unwritten > this.host.bounds.sendHardLimitBytes) {
      this.terminate(1011, 'too much data buffered for this WebSocket');
      return;
    }
    if (this.unwritten > this.host.bounds.sendHighWaterBytes) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  close(code: number | null, reason: string): void {
    if (this.passOnly !== null) return;
    if (this.closed || this.ws.readyState === WebSocket.CLOSING) return;
    if (code === null) this.ws.close();
    else this.ws.close(code, reason);
    this.armCloseTimer();
  }

  terminate(code: number, reason: string): void {
    this.ownerLost(code, reason);
  }

  private ownerLost(code: number, reason: string): void {
    if (this.ownerGone) return;
    this.ownerGone = true;
    this.host.stats.closedByOwner++;
    this.host.queued(-this.queuedBytes);
    this.queuedBytes = 0;
    this.queue.length = 0;
    if (this.ws.isPaused) this.ws.resume();
    this.wake();
    if (!this.closed && this.ws.readyState === WebSocket.OPEN) {
      this.ws.close(code, reason);
      this.armCloseTimer();
    } else if (!this.closed) this.ws.terminate();
  }

  private armCloseTimer(): void {
    if (this.closeTimer) return;
    this.closeTimer = setTimeout(() => this.ws.terminate(), this.host.bounds.closeTimeoutMs);
    this.closeTimer.unref();
  }
}

function headerPairs(raw: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i], raw[i + 1]]);
  return pairs;
}

export interface WebSocketHostOptions {
  bounds?: Partial<WebSocketBounds>;
  /** outbound connections; without one, fetch() with Upgrade: websocket is refused */
  outbound?: OutboundPolicy;
}

export class WebSocketHost {
  readonly bounds: WebSocketBounds;
  readonly stats: WebSocketStats = { open: 0, accepted: 0, connected: 0, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, bufferedOutBytes: 0, peakBufferedOutBytes: 0, queuedInBytes: 0, peakQueuedInBytes: 0, readsPaused: 0, closedByOwner: 0, spliced: 0 };
  private readonly server: WebSocketServer;
  private readonly relays = new Set<Relay>();
  /** spliced connections to another Cinder process, pinged as relays are (a holder that vanished
   *  without closing them is noticed), with whether the last ping was answered */
  private readonly splicedRemote = new Map<WebSocket, { answered: boolean }>();
  /** the client ends of spliced connections: closed with 1001 at shutdown themselves, not after
   *  their upstream's close handshake (the process may be gone by then) */
  private readonly splicedClients = new Set<WebSocket>();
  private shutDown = false;
  /** the worker's own 101 headers, by the request being upgraded (written with the handshake) */
  private readonly responseHeaders = new WeakMap<http.IncomingMessage, [string, string][]>();
  /** the subprotocol the worker chose, by request */
  private readonly chosenProtocol = new WeakMap<http.IncomingMessage, string>();
  private readonly pinger: NodeJS.Timeout;
  private readonly outbound: OutboundPolicy | undefined;

  constructor(options: WebSocketHostOptions = {}) {
    this.bounds = { ...DEFAULT_WEBSOCKET_BOUNDS, ...options.bounds };
    this.outbound = options.outbound;
    this.server = new WebSocketServer({
      noServer: true,
      maxPayload: this.bounds.maxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (protocols, req) => {
        const chosen = this.chosenProtocol.get(req);
        return chosen !== undefined && protocols.has(chosen) ? chosen : false;
      },
    });
    this.server.on('headers', (lines, req) => {
      for (const [name, value] of this.responseHeaders.get(req) ?? []) lines.push(`${name}: ${value}`);
    });
    this.pinger = setInterval(() => this.ping(), this.bounds.pingIntervalMs);
    this.pinger.unref();
  }

  /**
   * Complete the handshake of an upgrade request the worker answered with a 101 and a WebSocket
   * (the ingress calls this), and relay the socket to the guest end from then on.
   */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, accepted: { owner: SocketOwner; socketId: number }, headers: [string, string][]): void {
    const extra: [string, string][] = [];
    for (const [name, value] of headers) {
      const lower = name.toLowerCase();
      if (lower === 'sec-websocket-protocol') this.chosenProtocol.set(req, value.trim());
      else if (!HANDSHAKE_HEADERS.has(lower)) extra.push([name, value]);
    }
    this.responseHeaders.set(req, extra);
    let attached = false;
    // ws answers a malformed handshake with a 400 itself and never calls back: the guest end
    // offered for it is closed then, so the isolate is not kept for it.
    socket.once('close', () => {
      if (!attached) accepted.owner.drop(accepted.socketId);
    });
    const outbound = accepted.owner.link(accepted.socketId);
    this.server.handleUpgrade(req, socket, head, (ws) => {
      attached = true;
      if (outbound instanceof Relay && outbound.passable) {
        // The worker passes its outbound socket through: the two are spliced, host to host.
        const { ws: upstream, pending, lostCode } = outbound.handOver();
        this.splice(ws, upstream, pending, lostCode);
        return;
      }
      if (outbound?.handOff) {
        // Another owner's socket (a Durable Object's hibernatable WebSocket): ownership moves to
        // it, and the worker's isolate that carried the response lets go.
        const target = outbound.handOff;
        accepted.owner.detach(accepted.socketId);
        const relay = new Relay(this, ws, target.owner, target.socketId);
        if (!target.owner.attach(target.socketId, relay, true)) {
          ws.close(1011, 'the Durable Object let go of this WebSocket');
          return;
        }
        this.stats.accepted++;
        relay.start(true);
        return;
      }
      if (outbound) {
        ws.close(1011, 'the worker answered with a WebSocket it had accepted');
        return;
      }
      const relay = new Relay(this, ws, accepted.owner, accepted.socketId);
      if (!accepted.owner.attach(accepted.socketId, relay, true)) {
        ws.close(1011, 'worker went away');
        return;
      }
      this.stats.accepted++;
      relay.start(true);
    });
  }

  /**
   * Two sockets joined host to host (a worker passing an outbound socket through): each one's
   * messages go to the other, each direction bounded as a relay's is (reading stops while the
   * other side has sendHighWaterBytes unwritten), and a close on one side closes the other.
   */
  private splice(client: WebSocket, upstream: WebSocket, pending: SocketEvent[], lostCode = 1006): void {
    this.stats.spliced++;
    client.on('error', () => {}); // ws closes after an error; 'close' follows
    this.splicedClients.add(client);
    client.once('close', () => this.splicedClients.delete(client));
    const forward = (from: WebSocket, to: WebSocket) => {
      let unwritten = 0;
      const send = (data: Buffer | string, binary: boolean) => {
        if (to.readyState !== WebSocket.OPEN) return;
        const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
        unwritten += size;
        this.buffered(size);
        this.stats.messagesOut++;
        this.stats.bytesOut += size;
        to.send(data, { binary }, () => {
          unwritten -= size;
          this.buffered(-size);
          if (from.isPaused && unwritten <= this.bounds.sendHighWaterBytes / 2) from.resume();
        });
        if (unwritten > this.bounds.sendHighWaterBytes && !from.isPaused) {
          from.pause();
          this.stats.readsPaused++;
        }
      };
      from.on('message', (data, isBinary) => {
        const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
        this.stats.messagesIn++;
        this.stats.bytesIn += buffer.byteLength;
        send(isBinary ? buffer : buffer.toString('utf8'), isBinary);
      });
      from.on('close', (code, reason) => {
        // A connection to another process cut without a close frame: its client sees a server error.
        if (code === 1006 && from === upstream && lostCode !== 1006) closeWith(to, lostCode, 'the connection to the process holding the Durable Object was lost');
        else closeWith(to, code, reason.toString('utf8'));
      });
      return send;
    };
    const toClient = forward(upstream, client);
    forward(client, upstream);
    if (lostCode !== 1006) {
      const state = { answered: true };
      this.splicedRemote.set(upstream, state);
      upstream.on('pong', () => (state.answered = true));
      upstream.once('close', () => this.splicedRemote.delete(upstream));
    }
    for (const event of pending) {
      if (event.type === 'message') toClient(typeof event.data === 'string' ? event.data : Buffer.from(event.data), typeof event.data !== 'string');
      else if (event.type === 'close') closeWith(client, event.code, event.reason);
    }
    // (a close that came before the splice was among the pending events)
    if (upstream.readyState === WebSocket.CLOSED && !pending.some((e) => e.type === 'close')) closeWith(client, lostCode, '');
  }

  /** The guest ops: register each under its WEBSOCKET_OPS name. */
  ops(): Record<string, OpHandler> {
    return {
      [WEBSOCKET_OPS.send]: async (call, args) => {
        const link = call.sockets.link(socketIdOf(args[0]));
        const messages = messagesOf(args[1], this.bounds.maxMessageBytes);
        if (call.invocation) for (const m of messages) call.invocation.bytesOut += typeof m === 'string' ? Buffer.byteLength(m) : m.byteLength;
        // A socket already closed: its close event is on the way to the guest.
        if (link) await link.send(messages);
        return null;
      },
      [WEBSOCKET_OPS.close]: async (call, args) => {
        const link = call.sockets.link(socketIdOf(args[0]));
        const code = args[1] === null || args[1] === undefined ? null : Number(args[1]);
        if (code !== null && !(code === 1000 || (Number.isInteger(code) && code >= 3000 && code <= 4999))) throw new TypeError(`Invalid WebSocket close code: ${String(args[1])}.`);
        const reason = String(args[2] ?? '');
        if (Buffer.byteLength(reason) > 123) throw new TypeError('WebSocket close reason too long: at most 123 bytes.');
        link?.close(code, reason);
        return null;
      },
      [WEBSOCKET_OPS.accept]: async (call, args) => {
        call.sockets.link(socketIdOf(args[0]))?.accept();
        return null;
      },
      [WEBSOCKET_OPS.connect]: (call, args) => this.connect(call, socketIdOf(args[0]), args[1]),
    };
  }

  private async connect(call: OpCall, socketId: number, raw: unknown): Promise<WebSocketConnectAnswer> {
    const request = raw as WebSocketConnectRequest;
    if (!request || typeof request !== 'object' || typeof request.url !== 'string' || !Array.isArray(request.headers)) throw new TypeError('fetch: invalid WebSocket request');
    if (!this.outbound) throw new TypeError('fetch() with "Upgrade: websocket": outbound WebSockets are not enabled on this server.');
    chargeSubrequest(call.invocation, call.limits.subrequests);
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      throw new TypeError(`Invalid URL: ${request.url}`);
    }
    // The address policy speaks http(s); a WebSocket URL is judged as the HTTP URL it upgrades.
    if (url.protocol === 'ws:' || url.protocol === 'wss:') url = new URL(`${url.protocol === 'ws:' ? 'http:' : 'https:'}${url.href.slice(url.protocol.length)}`);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`Fetch API cannot load: ${url.protocol} URLs are not supported`);
    this.outbound.check(url);
    const headers: Record<string, string> = {};
    let protocols: string[] = [];
    for (const pair of request.headers) {
      if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') throw new TypeError('fetch: invalid header');
      const lower = pair[0].toLowerCase();
      if (lower === 'sec-websocket-protocol') protocols = pair[1].split(',').map((p) => p.trim()).filter(Boolean);
      else if (!CLIENT_HANDSHAKE_HEADERS.has(lower)) headers[pair[0]] = pair[1];
    }
    const target = `${url.protocol === 'https:' ? 'wss:' : 'ws:'}${url.href.slice(url.protocol.length)}`;
    const ws = new WebSocket(target, protocols, {
      headers,
      lookup: this.outbound.lookup,
      maxPayload: this.bounds.maxMessageBytes,
      perMessageDeflate: false,
      followRedirects: false,
      handshakeTimeout: this.bounds.handshakeTimeoutMs,
    });
    let upgradeHeaders: [string, string][] = [];
    ws.once('upgrade', (res) => (upgradeHeaders = headerPairs(res.rawHeaders)));
    const outcome = await new Promise<{ open: true } | { refused: WebSocketConnectAnswer }>((resolve, reject) => {
      ws.once('open', () => resolve({ open: true }));
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const done = () => {
          ws.terminate();
          resolve({ refused: { status: res.statusCode ?? 502, statusText: res.statusMessage ?? '', headers: headerPairs(res.rawHeaders), body: Buffer.concat(chunks).toString('utf8'), url: url.href } });
        };
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_REFUSAL_BODY) chunks.push(chunk.subarray(0, MAX_REFUSAL_BODY - size));
          size += chunk.length;
          if (size >= MAX_REFUSAL_BODY) res.destroy();
        });
        res.on('end', done);
        res.on('close', done);
      });
      ws.once('error', (error) => {
        const cause = (error as { cause?: Error }).cause;
        reject(new TypeError(`fetch failed: ${(error as Error).name === 'TypeError' ? error.message : (cause?.message ?? error.message)}`));
      });
    }).catch((error: Error) => {
      // a refused address: the policy's own words
      if (/refused: private, loopback/.test(error.message)) throw new TypeError(error.message.replace(/^fetch failed: /, ''));
      throw error;
    });
    if ('refused' in outcome) return outcome.refused;
    // Held until the guest accepts it: it may pass it on to a client instead (see upgrade).
    const relay = new Relay(this, ws, call.sockets, socketId, true);
    if (!call.sockets.attach(socketId, relay, false)) {
      ws.terminate();
      throw new TypeError('fetch: this WebSocket id is already in use');
    }
    this.stats.connected++;
    relay.start(false);
    return { status: 101, statusText: 'Switching Protocols', headers: upgradeHeaders, body: null, url: url.href };
  }

  /**
   * A connection opened by the host on a guest's behalf to another Cinder process (a Durable
   * Object held there answered a stub's fetch with a WebSocket: app/object-placement.ts), given to
   * the guest under `socketId` exactly as an outbound fetch's socket is: held until the guest
   * accepts it or returns it in a 101 (then spliced to its client). `early`: what arrived before.
   * False when the owner cannot take it (the connection is closed then).
   */
  adopt(owner: SocketOwner, socketId: number, ws: WebSocket, early: EarlyEvent[], passOnly: { refusal: string; timeoutMs: number }): boolean {
    const relay = new Relay(this, ws, owner, socketId, true);
    relay.lostCode = 1011;
    relay.passOnly = passOnly.refusal;
    if (!owner.attach(socketId, relay, false)) {
      ws.terminate();
      return false;
    }
    this.stats.connected++;
    relay.start(false);
    relay.replay(early);
    // Never returned to a client (the worker answered with something else): the connection closes
    // and the object sees its socket closed, as a local hand-off's does.
    const timer = setTimeout(() => {
      if (!relay.passable) return;
      relay.terminate(1001, 'the worker did not return the WebSocket in a 101 response');
      owner.detach(socketId);
    }, passOnly.timeoutMs);
    timer.unref();
    ws.once('close', () => clearTimeout(timer));
    return true;
  }

  // --- bookkeeping (the relays call these) ---------------------------------------------------------

  opened(relay: Relay): void {
    this.relays.add(relay);
    this.stats.open = this.relays.size;
  }

  closed(relay: Relay): void {
    this.relays.delete(relay);
    this.stats.open = this.relays.size;
  }

  buffered(delta: number): void {
    this.stats.bufferedOutBytes += delta;
    if (this.stats.bufferedOutBytes > this.stats.peakBufferedOutBytes) this.stats.peakBufferedOutBytes = this.stats.bufferedOutBytes;
  }

  queued(delta: number): void {
    this.stats.queuedInBytes += delta;
    if (this.stats.queuedInBytes > this.stats.peakQueuedInBytes) this.stats.peakQueuedInBytes = this.stats.queuedInBytes;
  }

  private ping(): void {
    for (const relay of this.relays) {
      if (!relay.answeredPing) {
        relay.ws.terminate();
        continue;
      }
      relay.answeredPing = false;
      if (relay.ws.readyState === WebSocket.OPEN) relay.ws.ping();
    }
    for (const [ws, state] of this.splicedRemote) {
      if (!state.answered) {
        ws.terminate();
        continue;
      }
      state.answered = false;
      if (ws.readyState === WebSocket.OPEN) ws.ping();
    }
  }

  /** Shutdown: every socket is cut (their isolates are going too). Once: the node link calls it
   *  before it cuts its own connections, and the server's closers again. */
  close(): void {
    if (this.shutDown) return;
    this.shutDown = true;
    clearInterval(this.pinger);
    for (const relay of [...this.relays]) relay.terminate(1001, 'server shutting down');
    for (const ws of [...this.splicedRemote.keys()]) ws.close(1001, 'server shutting down');
    for (const ws of [...this.splicedClients]) closeWith(ws, 1001, 'server shutting down');
    this.server.close();
  }
}

/** Close `ws` the way its partner was closed: the same code where a close frame can carry it. */
function closeWith(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) return;
  if (code === 1006) ws.terminate();
  else if (code === 1005 || !(code === 1000 || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999))) ws.close();
  else ws.close(code, reason);
}
