// WebSockets as Workers has them, installed in isolates whose worker mentions WebSocketPair or
// WebSocket: `new WebSocketPair()`, accept/send/close, message/close/error events, a 101 response
// carrying the pair's client end, and fetch() with Upgrade: websocket.
//
// An end is local (both ends of a pair in this isolate: a message goes straight to the other end)
// until the other end leaves for the host: the client end of a 101 response (the ingress completes
// the handshake with the real client), or an outbound connection the host made. From then on this
// end's sends go to the host (WEBSOCKET_OPS.send, one batch at a time: the host answers once its
// buffer for the socket is under its bound, so a guest that sends faster than the client reads
// queues here, on its own heap, under its own memory limit), and the host's events come in through
// the dispatchSocketEvent entry, each one an invocation (see sandbox/dispatch.ts).
import { Event, EventTarget, makeTrusted, dispatch } from '../api/events.js';
import { Blob } from '../api/blob.js';
import { createIncomingResponse } from '../api/response.js';
import { utf8Encode } from '../api/encoding.js';
import { DOMException } from '../api/dom-exception.js';
import { hostCall, hostCallSync } from '../bridge.js';
import { currentInvocation } from '../invocation.js';
import { structuredClone } from '../api/structured-clone.js';
import { registerWebSocketHooks } from '../websocket-hooks.js';
import { DO_OPS, DO_SYNC_OPS, MAX_WEBSOCKET_MESSAGE_BYTES, OPS, type SocketEvent } from '../../protocol/wall.js';

/** Largest batch of queued messages handed to the host in one call. */
const MAX_BATCH_BYTES = MAX_WEBSOCKET_MESSAGE_BYTES;
/** ...and at most this many messages (the host refuses larger batches). */
const MAX_BATCH_MESSAGES = 1024;
const MAX_REASON_BYTES = 123;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

type Message = string | ArrayBuffer;

interface SocketState {
  readyState: number;
  accepted: boolean;
  /** the other end, while it is in this isolate */
  peer: WebSocket | null;
  /** set once the other end is the host's: the id both sides know this end by */
  hostId: number | null;
  /** the host has the socket open: sends may go out */
  hostOpen: boolean;
  /** handed to the host (the client end of a 101): no longer usable here */
  transferred: boolean;
  /** an outbound connection's end (fetch with Upgrade: websocket) */
  outbound: boolean;
  /** messages for the host not yet handed over */
  outbox: Message[];
  sending: boolean;
  /** a close() waiting for the outbox to drain */
  pendingClose: { code?: number; reason?: string } | null;
  closeSent: boolean;
  /** events that arrived before accept() */
  inbox: SocketEvent[];
  binaryType: 'arraybuffer' | 'blob';
  /** accepted with a Durable Object's ctx.acceptWebSocket(): hostId is the host's id of it, and
   *  its events go to the object's handler methods, not to listeners */
  hibernatable: boolean;
  /** stands for a socket another owner holds (hostId): it can only be returned in a 101 */
  foreign: boolean;
  /** ...and that owner is this isolate's Durable Object: hostId is its hibernatable id (the pair's
   *  client end after acceptWebSocket), not a guest id */
  ofHibernated: boolean;
  /** serializeAttachment() on a socket that is not hibernatable: kept here */
  attachment: unknown;
}

const CONSTRUCT = Symbol('cinder.websocket');
let stateOf: (socket: WebSocket) => SocketState;
/** guest ends whose other end is the host's, by id */
const hosted = new Map<number, WebSocket>();
/** hibernatable WebSockets of the Durable Object this isolate hosts, by the host's id */
const hibernated = new Map<number, WebSocket>();
let nextSocketId = 1;

/** The promises listeners returned during the event being delivered (see deliver). */
let collecting: Promise<unknown>[] | null = null;

function collect(result: unknown): void {
  if (collecting && result !== null && (typeof result === 'object' || typeof result === 'function') && typeof (result as { then?: unknown }).then === 'function') {
    collecting.push(Promise.resolve(result as Promise<unknown>));
  }
}

// Listeners are wrapped so that a promise an async listener returns keeps the event's invocation
// (its CPU and wall limits, its subrequests) open until it settles.
const wrappers = new WeakMap<object, Map<string, (event: Event) => unknown>>();

function wrapperFor(callback: unknown, key: string, create: boolean): ((event: Event) => unknown) | null | undefined {
  if (callback === null || (typeof callback !== 'object' && typeof callback !== 'function')) return callback as null | undefined;
  let byKey = wrappers.get(callback);
  let wrapper = byKey?.get(key);
  if (wrapper || !create) return wrapper ?? null;
  wrapper = function (this: unknown, event: Event) {
    if (typeof callback === 'function') collect(callback.call(this, event));
    else {
      const handleEvent = (callback as { handleEvent?: unknown }).handleEvent;
      if (typeof handleEvent !== 'function') throw new TypeError("'handleEvent' property of event listener is not a function");
      collect(handleEvent.call(callback, event));
    }
  };
  if (!byKey) wrappers.set(callback, (byKey = new Map()));
  byKey.set(key, wrapper);
  return wrapper;
}

function captureOf(options: unknown): boolean {
  return typeof options === 'boolean' ? options : Boolean(options && (options as { capture?: unknown }).capture);
}

export class MessageEvent extends Event {
  #data: unknown;
  constructor(type: unknown, init: unknown = undefined) {
    super(type, init);
    this.#data = init && typeof init === 'object' ? (init as { data?: unknown }).data ?? null : null;
  }
  get data(): unknown {
    return this.#data;
  }
}

export class CloseEvent extends Event {
  #code: number;
  #reason: string;
  #wasClean: boolean;
  constructor(type: unknown, init: unknown = undefined) {
    super(type, init);
    const dict = (init && typeof init === 'object' ? init : {}) as { code?: unknown; reason?: unknown; wasClean?: unknown };
    this.#code = dict.code === undefined ? 0 : Number(dict.code) & 0xffff;
    this.#reason = dict.reason === undefined ? '' : String(dict.reason);
    this.#wasClean = Boolean(dict.wasClean);
  }
  get code(): number {
    return this.#code;
  }
  get reason(): string {
    return this.#reason;
  }
  get wasClean(): boolean {
    return this.#wasClean;
  }
}

export class ErrorEvent extends Event {
  #message: string;
  #error: unknown;
  constructor(type: unknown, init: unknown = undefined) {
    super(type, init);
    const dict = (init && typeof init === 'object' ? init : {}) as { message?: unknown; error?: unknown };
    this.#message = dict.message === undefined ? '' : String(dict.message);
    this.#error = dict.error;
  }
  get message(): string {
    return this.#message;
  }
  get error(): unknown {
    return this.#error;
  }
}

export class WebSocket extends EventTarget {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  #s: SocketState;

  static {
    stateOf = (socket) => {
      if (!(typeof socket === 'object' && socket !== null && #s in socket)) throw new TypeError('Illegal invocation');
      return socket.#s;
    };
  }

  constructor(url?: unknown, token?: unknown) {
    if (token !== CONSTRUCT) {
      throw new TypeError(`new WebSocket(${url === undefined ? '' : JSON.stringify(String(url))}) is not supported by Cinder: connect with fetch(url, { headers: { Upgrade: "websocket" } }) and use the response's webSocket.`);
    }
    super();
    this.#s = { readyState: OPEN, accepted: false, peer: null, hostId: null, hostOpen: false, transferred: false, outbound: false, outbox: [], sending: false, pendingClose: null, closeSent: false, inbox: [], binaryType: 'arraybuffer', hibernatable: false, foreign: false, ofHibernated: false, attachment: null };
  }

  get readyState(): number {
    return this.#s.readyState;
  }

  get url(): string | null {
    return null;
  }

  get protocol(): string | null {
    return null;
  }

  get extensions(): string | null {
    return null;
  }

  get binaryType(): string {
    return this.#s.binaryType;
  }

  set binaryType(value: unknown) {
    // As in browsers: anything but the two known values is ignored.
    if (value === 'arraybuffer' || value === 'blob') this.#s.binaryType = value;
  }

  accept(): void {
    const s = this.#s;
    if (s.transferred) throw new TypeError("Can't accept() a WebSocket that was already used in a response.");
    if (s.hibernatable) throw new TypeError('This WebSocket was accepted with acceptWebSocket(); it cannot also be accept()ed.');
    if (s.foreign) throw new TypeError("Can't accept() this WebSocket: its other end was accepted with acceptWebSocket(); return it in a 101 response (proxying a Durable Object's WebSocket in the calling worker is not supported by Cinder).");
    if (s.accepted) return;
    s.accepted = true;
    // An outbound socket's events wait on the host until it is accepted (it might be passed on).
    if (s.outbound && s.hostId !== null) hostCall(OPS.webSocket.accept, s.hostId).catch(() => {});
    if (s.inbox.length) {
      const queued = s.inbox.splice(0);
      // Delivered after accept() returns, as they would have been had they arrived then.
      void Promise.resolve().then(() => {
        for (const event of queued) deliverTo(this, event);
      });
    }
  }

  send(message: unknown): void {
    const s = this.#s;
    if (arguments.length < 1) throw new TypeError("Failed to execute 'send' on 'WebSocket': 1 argument required, but only 0 present.");
    if (!s.accepted) throw new TypeError('You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages.');
    if (s.closeSent || s.readyState === CLOSED) throw new TypeError("Can't call WebSocket send() after close().");
    const data = messageOf(message);
    const size = typeof data === 'string' ? utf8Encode(data).byteLength : data.byteLength;
    if (size > MAX_WEBSOCKET_MESSAGE_BYTES) throw new RangeError(`WebSocket message too large: ${size} bytes (the limit is ${MAX_WEBSOCKET_MESSAGE_BYTES}).`);
    if (s.peer) {
      toLocalPeer(s.peer, { type: 'message', data });
      return;
    }
    s.outbox.push(data);
    pump(this);
  }

  close(code?: unknown, reason?: unknown): void {
    const s = this.#s;
    if (!s.accepted) throw new TypeError('You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages.');
    // Closing twice, or after the other end's close (answered by the host at once, as workerd
    // does), changes nothing: `onclose = () => socket.close()` is common and harmless.
    if (s.closeSent) return;
    let closeCode: number | undefined;
    let closeReason: string | undefined;
    if (code !== undefined) {
      closeCode = Number(code);
      if (!Number.isInteger(closeCode) || !(closeCode === 1000 || (closeCode >= 3000 && closeCode <= 4999))) throw new DOMException(`Invalid WebSocket close code: ${String(code)}.`, 'InvalidAccessError');
    }
    // A close frame carries at most 123 bytes of reason; workerd accepts a longer one without a
    // word, and so does this: it is cut to what fits, at a character boundary.
    if (reason !== undefined) closeReason = fitReason(String(reason));
    s.closeSent = true;
    if (s.readyState === OPEN) s.readyState = CLOSING;
    else if (s.readyState === CLOSING && s.hostId === null && !s.peer) {
      // answering the other end's close (see deliverTo): the host already did
      s.readyState = CLOSED;
      return;
    }
    if (s.peer) {
      toLocalPeer(s.peer, { type: 'close', code: closeCode ?? 1005, reason: closeReason ?? '', wasClean: true });
      return;
    }
    s.pendingClose = { code: closeCode, reason: closeReason };
    pump(this);
  }

  /** Keep a copy of `value` with the socket (a hibernatable one's survives hibernation, on the host). */
  serializeAttachment(value: unknown): void {
    const s = this.#s;
    if (s.hibernatable && s.hostId !== null) {
      hostCallSync(DO_SYNC_OPS.webSocket, currentInvocation(), ['serialize', s.hostId, value]);
      return;
    }
    s.attachment = structuredClone(value);
  }

  deserializeAttachment(): unknown {
    const s = this.#s;
    if (s.hibernatable && s.hostId !== null) return hostCallSync(DO_SYNC_OPS.webSocket, currentInvocation(), ['deserialize', s.hostId]);
    return s.attachment === null ? null : structuredClone(s.attachment);
  }

  // Listeners are wrapped (see wrapperFor); the wrapper stands in for the callback both ways.
  addEventListener(type: unknown, callback: unknown, options: unknown = undefined): void {
    const key = `${String(type)}\0${captureOf(options)}`;
    super.addEventListener(type, wrapperFor(callback, key, true), options);
  }

  removeEventListener(type: unknown, callback: unknown, options: unknown = undefined): void {
    const key = `${String(type)}\0${captureOf(options)}`;
    super.removeEventListener(type, wrapperFor(callback, key, false), options);
  }
}

for (const [name, value] of [['CONNECTING', CONNECTING], ['OPEN', OPEN], ['CLOSING', CLOSING], ['CLOSED', CLOSED]] as const) {
  Object.defineProperty(WebSocket.prototype, name, { value, enumerable: true });
}

// No on<type> handler properties: workerd's WebSocket has none (test/differential/websocket.test.ts).
Object.defineProperty(WebSocket.prototype, Symbol.toStringTag, { value: 'WebSocket', configurable: true });

export class WebSocketPair {
  declare 0: WebSocket;
  declare 1: WebSocket;
  constructor() {
    const client = new WebSocket(undefined, CONSTRUCT);
    const server = new WebSocket(undefined, CONSTRUCT);
    stateOf(client).peer = server;
    stateOf(server).peer = client;
    // Own enumerable data properties 0 and 1: Object.values(pair) is [client, server].
    Object.defineProperty(this, 0, { value: client, enumerable: true });
    Object.defineProperty(this, 1, { value: server, enumerable: true });
  }
}

function fitReason(reason: string): string {
  if (utf8Encode(reason).byteLength <= MAX_REASON_BYTES) return reason;
  let cut = reason.slice(0, MAX_REASON_BYTES);
  while (utf8Encode(cut).byteLength > MAX_REASON_BYTES) cut = cut.slice(0, -1);
  // (never half a surrogate pair)
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return cut;
}

function messageOf(message: unknown): Message {
  if (message instanceof ArrayBuffer) return message.slice(0);
  if (ArrayBuffer.isView(message)) {
    const view = message as ArrayBufferView;
    return (view.buffer as ArrayBuffer).slice(view.byteOffset, view.byteOffset + view.byteLength);
  }
  return String(message);
}

/** A message or close from one local end to the other (delivered after the current code, in order). */
function toLocalPeer(peer: WebSocket, event: SocketEvent): void {
  const s = stateOf(peer);
  if (!s.accepted) {
    s.inbox.push(event);
    return;
  }
  void Promise.resolve().then(() => deliverTo(peer, event));
}

/** Hand queued messages (then a pending close) to the host, one batch at a time. */
function pump(socket: WebSocket): void {
  const s = stateOf(socket);
  if (s.sending || !s.hostOpen || s.hostId === null) return;
  const id = s.hostId;
  if (s.outbox.length) {
    const batch: Message[] = [];
    let bytes = 0;
    while (s.outbox.length && (batch.length === 0 || (batch.length < MAX_BATCH_MESSAGES && bytes + sizeOf(s.outbox[0]) <= MAX_BATCH_BYTES))) {
      const next = s.outbox.shift()!;
      bytes += sizeOf(next);
      batch.push(next);
    }
    s.sending = true;
    hostCall(s.hibernatable ? DO_OPS.webSocketSend : OPS.webSocket.send, id, batch).then(
      () => {
        s.sending = false;
        pump(socket);
      },
      () => {
        // The host's end is gone: its close (or error) event is on its way.
        s.sending = false;
        s.outbox.length = 0;
      },
    );
    return;
  }
  if (s.pendingClose) {
    const { code, reason } = s.pendingClose;
    s.pendingClose = null;
    hostCall(s.hibernatable ? DO_OPS.webSocketClose : OPS.webSocket.close, id, code ?? null, reason ?? '').catch(() => {});
  }
}

function sizeOf(message: Message): number {
  // (a string's UTF-8 length is at most 3 bytes per UTF-16 unit: a bound is enough here)
  return typeof message === 'string' ? message.length * 3 : message.byteLength;
}

function deliverTo(socket: WebSocket, event: SocketEvent): void {
  const s = stateOf(socket);
  switch (event.type) {
    case 'open':
      s.hostOpen = true;
      pump(socket);
      return;
    case 'message': {
      if (s.readyState === CLOSED) return;
      const data = typeof event.data === 'string' || s.binaryType === 'arraybuffer' ? event.data : new Blob([event.data]);
      dispatch(socket, makeTrusted(new MessageEvent('message', { data })));
      return;
    }
    case 'close': {
      // As workerd shows it: CLOSING while the close event runs, unless this end had closed
      // already; a close() in the listener then makes it CLOSED. (The host has answered the close
      // frame already: that close() sends nothing.)
      const answered = s.closeSent;
      s.readyState = answered ? CLOSED : CLOSING;
      s.outbox.length = 0;
      s.pendingClose = null;
      if (s.hostId !== null) hosted.delete(s.hostId);
      s.hostId = null;
      dispatch(socket, makeTrusted(new CloseEvent('close', { code: event.code, reason: event.reason, wasClean: event.wasClean })));
      return;
    }
    case 'error':
      s.readyState = CLOSED;
      s.closeSent = true;
      s.outbox.length = 0;
      if (s.hostId !== null) hosted.delete(s.hostId);
      dispatch(socket, makeTrusted(new ErrorEvent('error', { message: event.message, error: new Error(event.message) })));
      return;
  }
}

/** The client end of a 101 response leaves for the host; its peer now talks to the host. */
function transfer(value: unknown): number {
  const client = value as WebSocket;
  const s = stateOf(client);
  if (s.transferred) throw new TypeError('This WebSocket was already used in a response.');
  if (s.accepted) throw new TypeError("Can't return a WebSocket that was accepted in this worker: return the other end of the WebSocketPair.");
  if (s.foreign && s.hostId !== null) {
    // Another owner's socket (a Durable Object's): the host moves it to that owner.
    const id = s.hostId;
    s.transferred = true;
    s.readyState = CLOSED;
    s.hostId = null;
    return id;
  }
  if (s.outbound && s.hostId !== null) {
    // An outbound socket passed through (`return fetch(request)` for an upgrade): the host joins
    // it to the client.
    const id = s.hostId;
    s.transferred = true;
    s.readyState = CLOSED;
    hosted.delete(id);
    s.hostId = null;
    return id;
  }
  const server = s.peer;
  if (!server) throw new TypeError("This WebSocket cannot be returned: it is closed.");
  const id = nextSocketId++;
  s.transferred = true;
  s.readyState = CLOSED;
  s.peer = null;
  const peer = stateOf(server);
  peer.peer = null;
  peer.hostId = id;
  hosted.set(id, server);
  // What the server end sent before the response left is the client's first messages.
  for (const event of s.inbox.splice(0)) {
    if (event.type === 'message') peer.outbox.push(event.data);
    else if (event.type === 'close') peer.pendingClose = { code: event.code === 1005 ? undefined : event.code, reason: event.reason };
  }
  return id;
}

/** Set in a Durable Object's isolate: events go in through its input gate. */
let eventGate: ((run: () => Promise<unknown>[]) => Promise<unknown>[]) | null = null;

function deliver(socketId: number, event: SocketEvent): Promise<unknown>[] {
  if (eventGate && event.type !== 'open') return eventGate(() => deliverNow(socketId, event));
  return deliverNow(socketId, event);
}

function deliverNow(socketId: number, event: SocketEvent): Promise<unknown>[] {
  const socket = hosted.get(socketId);
  if (!socket) return [];
  const s = stateOf(socket);
  if (event.type !== 'open' && !s.accepted) {
    s.inbox.push(event);
    return [];
  }
  const work: Promise<unknown>[] = [];
  const outer = collecting;
  collecting = work;
  try {
    deliverTo(socket, event);
  } finally {
    collecting = outer;
  }
  return work;
}

interface ConnectAnswer {
  status: number;
  statusText: string;
  headers: [string, string][];
  /** the body of a refused upgrade (small, text) */
  body: string | null;
  url: string;
}

async function connect(request: { url: string; headers: [string, string][] }): Promise<unknown> {
  const id = nextSocketId++;
  const socket = new WebSocket(undefined, CONSTRUCT);
  const s = stateOf(socket);
  s.hostId = id;
  s.outbound = true;
  // Registered before the host connects: events may come in before the answer does.
  hosted.set(id, socket);
  let answer: ConnectAnswer;
  try {
    answer = await hostCall<ConnectAnswer>(OPS.webSocket.connect, id, request);
  } catch (error) {
    hosted.delete(id);
    throw error;
  }
  if (answer.status !== 101) {
    hosted.delete(id);
    return createIncomingResponse({ status: answer.status, statusText: answer.statusText, headers: answer.headers, body: answer.body, url: answer.url, redirected: false });
  }
  s.hostOpen = true;
  return createIncomingResponse({ status: 101, statusText: answer.statusText, headers: answer.headers, body: null, url: answer.url, redirected: false, webSocket: socket });
}

// --- the Durable Object hibernation API -------------------------------------------------------------

function hibernate(value: unknown, allocate: () => number): void {
  const server = value as WebSocket;
  const s = stateOf(server);
  if (s.outbound) throw new TypeError('acceptWebSocket() takes the server end of a WebSocketPair; an outbound WebSocket (from fetch) cannot be hibernated by Cinder.');
  if (s.accepted) throw new Error('Cannot call `acceptWebSocket()` if the WebSocket was already accepted via `accept()`');
  if (s.transferred || s.foreign || !s.peer) throw new Error('Cannot call `acceptWebSocket()` on this WebSocket because its pair has already been accepted or used in a Response.');
  const client = s.peer;
  if (stateOf(client).accepted || stateOf(client).transferred) throw new Error('Cannot call `acceptWebSocket()` on this WebSocket because its pair has already been accepted or used in a Response.');
  const id = allocate();
  s.peer = null;
  s.accepted = true;
  s.hibernatable = true;
  s.hostId = id;
  // The host holds what is sent until the client connects.
  s.hostOpen = true;
  const c = stateOf(client);
  c.peer = null;
  c.foreign = true;
  c.ofHibernated = true;
  c.hostId = id;
  hibernated.set(id, server);
}

function revive(id: number): WebSocket {
  let socket = hibernated.get(id);
  if (!socket) {
    // After hibernation: a new object for the socket the host kept open.
    socket = new WebSocket(undefined, CONSTRUCT);
    const s = stateOf(socket);
    s.accepted = true;
    s.hibernatable = true;
    s.hostId = id;
    s.hostOpen = true;
    hibernated.set(id, socket);
  }
  return socket;
}

function hibernatedEvent(id: number, event: SocketEvent): void {
  const socket = hibernated.get(id);
  if (!socket) return;
  const s = stateOf(socket);
  if (event.type === 'close') {
    s.readyState = s.closeSent ? CLOSED : CLOSING;
    s.outbox.length = 0;
    s.pendingClose = null;
    hibernated.delete(id);
  } else if (event.type === 'error') {
    s.readyState = CLOSED;
    s.closeSent = true;
    s.outbox.length = 0;
    hibernated.delete(id);
  }
}

function ownState(value: unknown): SocketState | null {
  try {
    return stateOf(value as WebSocket);
  } catch {
    return null;
  }
}

function foreignEnd(id: number): WebSocket {
  const socket = new WebSocket(undefined, CONSTRUCT);
  const s = stateOf(socket);
  s.foreign = true;
  s.hostId = id;
  return socket;
}

export default function install(): { globals: Record<string, unknown> } {
  registerWebSocketHooks({
    isWebSocket: (value) => {
      try {
        stateOf(value as WebSocket);
        return true;
      } catch {
        return false;
      }
    },
    transfer,
    deliver,
    connect,
    hibernate,
    revive,
    hibernatableId: (value) => {
      const s = ownState(value);
      return s && s.hibernatable ? s.hostId : null;
    },
    foreignId: (value) => {
      const s = ownState(value);
      return s && s.ofHibernated && !s.transferred ? s.hostId : null;
    },
    hibernatedEvent,
    reserveId: () => nextSocketId++,
    foreignEnd,
    setEventGate: (gate) => {
      eventGate = gate;
    },
  });
  return { globals: { WebSocket, WebSocketPair, MessageEvent, CloseEvent, ErrorEvent } };
}
