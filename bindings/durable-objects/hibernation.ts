// The WebSocket hibernation API's host side: the WebSockets a Durable Object accepted with
// ctx.acceptWebSocket(), held here rather than in the object's isolate, so the object can be evicted
// (its isolate disposed, as any idle object is) while its sockets stay open. An event on one of them
// (a message, a close, an error) wakes the object: the object host re-creates it from storage if it
// is not live (its constructor runs again) and delivers the event as an invocation of its own,
// through the object's input gate, metered and limited like any other event.
//
// Per object, one ObjectSockets table: each socket's host id (stable while it is open, across
// hibernation), its tags, its serialized attachment and its last auto-response time, and the
// object's auto-response pair and event timeout. The table is the sockets' owner for the relays
// (bindings/websocket/host.ts): a socket the object accepted is first pending (its client end is in
// the object's 101 response); the calling worker's isolate carries that response through a stand-in
// link (`handOff`), and when the ingress completes the handshake ownership moves to the table.
//
// Bounded: 32,768 sockets per object, 10 tags of 256 characters, 16 KiB per attachment (Cloudflare's
// limits); at most MAX_PENDING_SOCKETS accepted sockets per object whose client has not connected,
// holding at most MAX_PENDING_BYTES each (MAX_PENDING_BYTES_PER_OBJECT in all) of messages sent
// meanwhile; a pending socket not connected within PENDING_TIMEOUT_MS is dropped. The same, across
// objects, per account and per server (HIBERNATION_TOTALS): an account may make as many objects as
// it likes.
import { serialize, deserialize } from 'node:v8';
import type { SocketEvent } from '../../protocol/wall.js';
import type { SocketLink, SocketOwner } from '../../src/runtime/contract.js';
import { HIBERNATION_LIMITS } from './protocol.js';
import { HandOff } from './hand-off.js';
import type { NamespaceRecord } from './registry.js';

type Message = string | ArrayBuffer;

/** How long a socket the object accepted may wait for its client's handshake. */
const PENDING_TIMEOUT_MS = 60_000;
/** Bytes an object may send on a socket before its client is connected, and on all such sockets. */
const MAX_PENDING_BYTES = 1024 * 1024;
const MAX_PENDING_BYTES_PER_OBJECT = 8 * 1024 * 1024;
/** Sockets an object accepted whose client has not connected yet: they hold host memory (their
 *  attachments, messages) and a timer without a connection to show for it. */
export const MAX_PENDING_SOCKETS = 1024;
/** The same held across objects: `newUniqueId()` gives an account as many objects as it likes, so
 *  the per-object bounds alone bound nothing. Per account, and per server (all accounts). */
export const HIBERNATION_TOTALS = {
  /** accepted sockets whose clients have not connected yet */
  pendingPerAccount: 4096,
  pendingPerServer: 16_384,
  /** bytes held for sockets: their attachments and the messages sent before their client connected */
  bytesPerAccount: 64 * 1024 * 1024,
  bytesPerServer: 256 * 1024 * 1024,
  /** hibernatable sockets held (open or pending) for one account's objects */
  socketsPerAccount: 65_536,
};

/** What every table on the server holds in all, and per account (HIBERNATION_TOTALS bounds it). */
export class HibernationTotals {
  readonly server = { pending: 0, bytes: 0, sockets: 0 };
  private readonly accounts = new Map<string, { pending: number; bytes: number; sockets: number }>();

  of(account: string): { pending: number; bytes: number; sockets: number } {
    let held = this.accounts.get(account);
    if (!held) this.accounts.set(account, (held = { pending: 0, bytes: 0, sockets: 0 }));
    return held;
  }

  /** Refuse what would take the account or the server past a bound, naming it. */
  checkAccept(account: string): void {
    const held = this.of(account);
    if (held.sockets >= HIBERNATION_TOTALS.socketsPerAccount) throw new RangeError(`this account's Durable Objects hold ${HIBERNATION_TOTALS.socketsPerAccount} hibernatable WebSockets, the most one account may hold on a Cinder server`);
    if (held.pending >= HIBERNATION_TOTALS.pendingPerAccount) throw new RangeError(`this account's Durable Objects have ${HIBERNATION_TOTALS.pendingPerAccount} accepted WebSockets whose clients have not connected yet, the most one account may have (Cinder's bound); return each one's client end in a 101 response first`);
    if (this.server.pending >= HIBERNATION_TOTALS.pendingPerServer) throw new RangeError(`this server holds ${HIBERNATION_TOTALS.pendingPerServer} accepted WebSockets whose clients have not connected yet, the most it holds for all accounts (Cinder's bound); try again shortly`);
  }

  checkBytes(account: string, more: number): void {
    if (more <= 0) return;
    if (this.of(account).bytes + more > HIBERNATION_TOTALS.bytesPerAccount) throw new RangeError(`this account's Durable Objects hold ${HIBERNATION_TOTALS.bytesPerAccount} bytes of WebSocket attachments and messages awaiting their clients, the most one account may hold (Cinder's bound)`);
    if (this.server.bytes + more > HIBERNATION_TOTALS.bytesPerServer) throw new RangeError(`this server holds ${HIBERNATION_TOTALS.bytesPerServer} bytes of WebSocket attachments and messages awaiting their clients for all accounts, the most it holds (Cinder's bound)`);
  }

  add(account: string, change: { pending?: number; bytes?: number; sockets?: number }): void {
    const held = this.of(account);
    for (const field of ['pending', 'bytes', 'sockets'] as const) {
      held[field] += change[field] ?? 0;
      this.server[field] += change[field] ?? 0;
    }
    if (held.pending === 0 && held.bytes === 0 && held.sockets === 0) this.accounts.delete(account);
  }
}

/** The object a table belongs to, as the object host addresses it. */
export interface ObjectRef {
  key: string;
  namespace: NamespaceRecord;
  id: string;
  name: string | null;
}

/** What the tables need of the rest: waking the object with one event, and whether it is live. */
export interface HibernationHooks {
  /** deliver the event to the object (re-creating it when hibernated); rejects when it cannot be
   *  handled (the object failed to load, went over a limit): the relay then closes with 1011 */
  wake(ref: ObjectRef, socketId: number, event: SocketEvent, bytes: number, timeoutMs: number | null): Promise<void>;
  isLive(key: string): boolean;
  /** the worker's deployed version now (sockets accepted by an older version are closed) */
  version(script: string): string | undefined;
}

interface HibernatableSocket {
  id: number;
  tags: string[];
  attachment: Buffer | null;
  link: SocketLink | null;
  /** its close or error is being delivered: no longer listed */
  closing: boolean;
  outbox: Message[];
  outboxBytes: number;
  pendingClose: { code: number | null; reason: string } | null;
  autoResponseAt: number | null;
  /** accepted, its client not connected yet (counted in the table's pending) */
  pending: boolean;
  pendingTimer: NodeJS.Timeout | null;
  /** the stand-in in the calling worker's isolate, while the 101 is on its way */
  handOff: HandOff | null;
}

function sizeOf(message: Message): number {
  return typeof message === 'string' ? Buffer.byteLength(message) : message.byteLength;
}

export class ObjectSockets implements SocketOwner {
  private readonly sockets = new Map<number, HibernatableSocket>();
  private nextId = 1;
  /** sockets not connected yet, and the bytes sent on them (held here) */
  private pending = 0;
  private pendingBytes = 0;
  autoResponse: { request: string; response: string } | null = null;
  eventTimeoutMs: number | null = null;
  /** the worker version whose object accepted the sockets (a redeploy closes them) */
  version: string | null = null;

  constructor(
    readonly ref: ObjectRef,
    private readonly hooks: HibernationHooks,
    private readonly forget: (table: ObjectSockets) => void,
    private readonly totals: HibernationTotals = new HibernationTotals(),
  ) {}

  private get account(): string {
    return this.ref.namespace.account;
  }

  get worker(): string {
    return this.ref.namespace.script;
  }

  get size(): number {
    return this.sockets.size;
  }

  // --- the object's API (the do.ws sync op) ---------------------------------------------------------

  accept(tags: string[], version: string): number {
    if (this.sockets.size >= HIBERNATION_LIMITS.maxSockets) throw new RangeError(`a Durable Object can hold at most ${HIBERNATION_LIMITS.maxSockets} hibernatable WebSockets`);
    if (this.version !== null && this.version !== version) this.closeAll(1012, 'Durable Object code updated');
    if (this.pending >= MAX_PENDING_SOCKETS) throw new RangeError(`this Durable Object has ${MAX_PENDING_SOCKETS} accepted WebSockets whose clients have not connected yet; return each one's client end in a 101 response first (Cinder's bound)`);
    this.totals.checkAccept(this.account);
    this.version = version;
    this.pending++;
    this.totals.add(this.account, { pending: 1, sockets: 1 });
    const id = this.nextId++;
    const socket: HibernatableSocket = { id, tags, attachment: null, link: null, closing: false, outbox: [], outboxBytes: 0, pendingClose: null, autoResponseAt: null, pending: true, pendingTimer: null, handOff: null };
    socket.pendingTimer = setTimeout(() => this.drop(id), PENDING_TIMEOUT_MS);
    socket.pendingTimer.unref();
    this.sockets.set(id, socket);
    return id;
  }

  list(tag: string | null): number[] {
    const out: number[] = [];
    for (const socket of this.sockets.values()) if (!socket.closing && (tag === null || socket.tags.includes(tag))) out.push(socket.id);
    return out;
  }

  tagsOf(id: number): string[] {
    return [...this.known(id).tags];
  }

  serializeAttachment(id: number, value: unknown): void {
    const socket = this.known(id);
    const bytes = serialize(value);
    if (bytes.byteLength > HIBERNATION_LIMITS.maxAttachmentBytes) {
      throw new Error(`A WebSocket 'attachment' cannot be larger than ${HIBERNATION_LIMITS.maxAttachmentBytes} bytes.'attachment' was ${bytes.byteLength} bytes.`);
    }
    this.totals.checkBytes(this.account, bytes.byteLength - (socket.attachment?.byteLength ?? 0));
    this.totals.add(this.account, { bytes: bytes.byteLength - (socket.attachment?.byteLength ?? 0) });
    socket.attachment = bytes;
  }

  deserializeAttachment(id: number): unknown {
    const socket = this.sockets.get(id);
    return socket?.attachment ? deserialize(socket.attachment) : null;
  }

  autoResponseTimestamp(id: number): number | null {
    return this.sockets.get(id)?.autoResponseAt ?? null;
  }

  private known(id: number): HibernatableSocket {
    const socket = this.sockets.get(id);
    if (!socket) throw new TypeError('this WebSocket is not one of this Durable Object\'s hibernatable WebSockets any more (it closed)');
    return socket;
  }

  /** The object's send: to the client, or held until the client is connected. */
  async send(id: number, messages: Message[]): Promise<void> {
    const socket = this.sockets.get(id);
    if (!socket || socket.closing) return; // its close event is on the way to the object
    if (socket.link) return socket.link.send(messages);
    let bytes = 0;
    for (const message of messages) bytes += sizeOf(message);
    if (socket.outboxBytes + bytes > MAX_PENDING_BYTES || this.pendingBytes + bytes > MAX_PENDING_BYTES_PER_OBJECT) {
      throw new RangeError(`too much sent on WebSockets whose clients are not connected yet (at most ${MAX_PENDING_BYTES} bytes per socket, ${MAX_PENDING_BYTES_PER_OBJECT} per object)`);
    }
    this.totals.checkBytes(this.account, bytes);
    this.totals.add(this.account, { bytes });
    socket.outboxBytes += bytes;
    this.pendingBytes += bytes;
    socket.outbox.push(...messages);
  }

  close(id: number, code: number | null, reason: string): void {
    const socket = this.sockets.get(id);
    if (!socket) return;
    if (socket.link) socket.link.close(code, reason);
    else socket.pendingClose = { code, reason };
  }

  /** Whether socket `id` waits for its client and has not been handed to a caller yet. */
  pendingHandOff(id: number): boolean {
    const socket = this.sockets.get(id);
    return socket !== undefined && socket.link === null && socket.handOff === null && !socket.closing;
  }

  /** A 101 of the object's carries socket `id` to a calling isolate, which holds `standIn`. */
  handedOff(id: number, standIn: HandOff): void {
    const socket = this.sockets.get(id);
    if (socket) socket.handOff = standIn;
  }

  // --- SocketOwner: the relays of the sockets ---------------------------------------------------------

  attach(socketId: number, link: SocketLink, offered: boolean): boolean {
    const socket = this.sockets.get(socketId);
    if (!offered || !socket || socket.link || socket.closing) return false;
    this.settlePending(socket);
    socket.link = link;
    socket.handOff = null;
    const outbox = socket.outbox.splice(0);
    if (outbox.length) void link.send(outbox).catch(() => {});
    if (socket.pendingClose) link.close(socket.pendingClose.code, socket.pendingClose.reason);
    socket.pendingClose = null;
    return true;
  }

  link(socketId: number): SocketLink | undefined {
    return this.sockets.get(socketId)?.link ?? undefined;
  }

  async deliver(socketId: number, event: SocketEvent, bytes: number): Promise<void> {
    const socket = this.sockets.get(socketId);
    if (!socket) throw new Error('the WebSocket has no owner any more');
    // The host opened it: nothing for the object to do (workerd has no open event here either).
    if (event.type === 'open') return;
    if (event.type === 'message' && this.autoResponse && typeof event.data === 'string' && event.data === this.autoResponse.request && socket.link) {
      // Answered here, without waking the object.
      socket.autoResponseAt = Date.now();
      await socket.link.send([this.autoResponse.response]);
      return;
    }
    if (event.type === 'close' || event.type === 'error') socket.closing = true;
    if (this.version !== null && this.hooks.version(this.ref.namespace.script) !== this.version) {
      // Its worker was redeployed while the object hibernated: Cloudflare disconnects on code updates.
      this.closeAll(1012, 'Durable Object code updated');
      return;
    }
    await this.hooks.wake(this.ref, socketId, event, bytes, this.eventTimeoutMs);
  }

  detach(socketId: number): void {
    const socket = this.sockets.get(socketId);
    if (!socket) return;
    this.settlePending(socket);
    this.remove(socket);
    this.maybeForget();
  }

  /** The socket is no longer held: what it counted in the totals goes with it. */
  private remove(socket: HibernatableSocket): void {
    if (this.sockets.get(socket.id) !== socket) return;
    this.sockets.delete(socket.id);
    this.totals.add(this.account, { sockets: -1, bytes: -(socket.attachment?.byteLength ?? 0) });
  }

  /** A socket leaves the pending state (connected, or gone): its timer and held bytes go. */
  private settlePending(socket: HibernatableSocket): void {
    if (!socket.pending) return;
    socket.pending = false;
    if (socket.pendingTimer) clearTimeout(socket.pendingTimer);
    socket.pendingTimer = null;
    this.pendingBytes -= socket.outboxBytes;
    this.totals.add(this.account, { pending: -1, bytes: -socket.outboxBytes });
    socket.outboxBytes = 0;
    this.pending--;
  }

  /** A pending socket that will never be connected (the handshake failed, the carrying isolate
   *  went, nobody returned it in time): the object sees it closed (1006). */
  drop(socketId: number): void {
    const socket = this.sockets.get(socketId);
    if (!socket || socket.link) return;
    if (socket.pendingTimer) clearTimeout(socket.pendingTimer);
    socket.pendingTimer = null;
    socket.handOff?.release();
    socket.handOff = null;
    socket.closing = true;
    this.hooks
      .wake(this.ref, socketId, { type: 'close', code: 1006, reason: '', wasClean: false }, 0, this.eventTimeoutMs)
      .catch(() => {})
      .finally(() => this.detach(socketId));
  }

  /** Close every socket now (a redeploy, a shutdown): the object is not woken for them. */
  closeAll(code: number, reason: string): void {
    for (const socket of [...this.sockets.values()]) {
      this.settlePending(socket);
      socket.handOff?.release();
      socket.link?.terminate(code, reason);
      this.remove(socket);
    }
    this.maybeForget();
  }

  /** A table with no socket left is dropped once its object is gone too. */
  maybeForget(): void {
    if (this.sockets.size === 0 && !this.hooks.isLive(this.ref.key)) this.forget(this);
  }
}

/** Every object's table on this server. */
export class HibernatableSockets {
  private readonly tables = new Map<string, ObjectSockets>();
  readonly totals = new HibernationTotals();

  constructor(private readonly hooks: HibernationHooks) {}

  /** The object's table (made when `create`). */
  table(ref: ObjectRef, create: boolean): ObjectSockets | undefined {
    let table = this.tables.get(ref.key);
    if (!table && create) {
      table = new ObjectSockets(ref, this.hooks, (t) => {
        if (this.tables.get(t.ref.key) === t) this.tables.delete(t.ref.key);
      }, this.totals);
      this.tables.set(ref.key, table);
    }
    return table;
  }

  /** An object's instance went: on a redeploy its sockets close (1012); otherwise they stay open,
   *  hibernated, and the next event re-creates the object. */
  retired(key: string, reason: string): void {
    const table = this.tables.get(key);
    if (!table) return;
    if (reason === 'redeployed') table.closeAll(1012, 'Durable Object code updated');
    else if (reason === 'shutdown') table.closeAll(1001, 'server shutting down');
    else table.maybeForget();
  }

  /** A worker was redeployed or removed: its objects' sockets close (1012). */
  retiredWorker(script: string): void {
    for (const table of [...this.tables.values()]) if (table.ref.namespace.script === script) table.closeAll(1012, 'Durable Object code updated');
  }

  /** Sockets held for all objects (open or awaiting their client). */
  get count(): number {
    let n = 0;
    for (const table of this.tables.values()) n += table.size;
    return n;
  }
}
