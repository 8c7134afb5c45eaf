// What code outside the runtime builds on, types only: the op contract bindings implement (an op
// handler runs on the host for a guest call such as KV get or fetch), and the request and
// response of Runtime.fetch. Bindings import this file, never the runtime's core.
import type { LimitExceededError, Limits } from '../model/limits.js';
import type { BindingConfig, WorkerDefinition } from '../model/worker-definition.js';
import type { GuestException, SocketEvent, WireRequest } from '../../protocol/wall.js';
import type { InvocationPlace } from '../model/request-tree.js';

/** The invocation an op is called for, as an op may see and charge it. */
export interface OpInvocation {
  readonly requestId: string;
  /** subrequests made so far (outbound fetch, service calls); ops count theirs here */
  subrequests: number;
  /** the top-level request it serves: subrequests and service calls are charged there too */
  readonly place: InvocationPlace;
  /** bytes that came in for it (bodies read); ops count what they deliver */
  bytesIn: number;
  /** bytes it sent out (its response; WebSocket messages it sent) */
  bytesOut: number;
  /** host CPU spent on its behalf outside its isolate (e.g. key generation on the threadpool), ms:
   *  metered in its record; bounded by the op that does it, not by the CPU limit */
  hostWorkMs: number;
  /** CPU it used so far, ns: its isolate's, and what ops ran for it elsewhere and charged here
   *  (Durable Object storage); the CPU limit applies to the sum */
  cpuNs: bigint;
  /** aborted when a limit ends it early: work an op runs for it elsewhere stops then */
  readonly signal: AbortSignal;
}

export interface OpCall {
  worker: WorkerDefinition;
  limits: Limits;
  invocation: OpInvocation | undefined;
  /** resolve an env binding by name, as configured for this worker */
  binding(name: string): BindingConfig | undefined;
  /** hand the guest a host-side byte stream (string chunks are sent as UTF-8, as another
   *  invocation's streamed response yields them); it reads it with the `body.read` op by this id */
  openStream(source: AsyncIterable<Uint8Array | string>): number;
  /** a guest ReadableStream the guest offered by id (e.g. an outbound request body), read from the host */
  guestStream(id: number): AsyncIterable<Uint8Array>;
  /** a host stream (see openStream) the guest passed on untouched; the caller now owns it */
  takeHostStream(id: number): AsyncIterable<Uint8Array>;
  /** host-side state that lives as long as this isolate (e.g. crypto keys by handle), per op family */
  isolateState<T>(family: string, create: () => T): T;
  /** the WebSockets whose guest ends live in this isolate (bindings/websocket) */
  sockets: SocketOwner;
  /** work the op ran for the invocation elsewhere took it past its CPU limit (charged to cpuNs):
   *  end the invocation at that limit, as if its own code had used it */
  exceeded(limit: 'cpu'): void;
}

/**
 * Whoever holds the guest end of a WebSocket whose other end the host holds (bindings/websocket):
 * today the isolate of the worker whose fetch handler made or accepted it (a WorkerInstance); a
 * Durable Object instance later, for the hibernation API. The host's end (SocketLink) knows only
 * this interface: it hands events over one at a time and is told when the owner goes away.
 */
export interface SocketOwner {
  /** the worker, for logs and metrics */
  readonly worker: string;
  /**
   * Link the host's end to guest socket `socketId`. `offered`: the id came in a 101 response and
   * must be one the guest offered and not yet linked; otherwise (an outbound connection) it must
   * be free. False when the owner is gone or the id is not acceptable: the caller closes the link.
   */
  attach(socketId: number, link: SocketLink, offered: boolean): boolean;
  /**
   * Deliver one event to the guest end, as an invocation of its own (CPU, wall and memory limits,
   * metering; `bytes`: the message's size, counted in). Resolves once the guest has handled it;
   * rejects when the owner cannot take it (gone, or the event ended over a limit).
   */
  deliver(socketId: number, event: SocketEvent, bytes: number): Promise<void>;
  /** the link is closed for good: the owner forgets it (and may be recycled once none is left) */
  detach(socketId: number): void;
  /** a 101's socket that will never be connected (the request was no upgrade, the handshake
   *  failed): the guest end sees it closed (1006) and is forgotten */
  drop(socketId: number): void;
  /** the link of a guest socket id, for the guest's ops on it */
  link(socketId: number): SocketLink | undefined;
  /** a guest end left in a response that is not the owner's own fetch answer (a Durable Object's
   *  101 to a stub's fetch): await its handshake under `socketId`; false when it cannot */
  offer?(socketId: number): boolean;
}

/** The host's end of a WebSocket, as its owner and the guest's ops see it. */
export interface SocketLink {
  /** the guest's messages, in order; resolves once the host's buffer for the socket is under its bound */
  send(messages: (string | ArrayBuffer)[]): Promise<void>;
  /** the guest's close(): the closing handshake starts after what was sent before it */
  close(code: number | null, reason: string): void;
  /** the owner is going away (recycled, redeployed, over a limit): close now with this code */
  terminate(code: number, reason: string): void;
  /** the guest accepted an outbound socket: its events are delivered from now on */
  accept(): void;
  /**
   * Set on a stand-in, not a socket: the guest end this id names belongs to another owner (a
   * Durable Object's hibernatable WebSocket, answered through a stub's fetch). When the worker
   * returns it in a 101, the host connects the client to that owner and socket instead, and the
   * worker's isolate lets go of it (ownership moves; the worker's isolate is not kept for it).
   */
  readonly handOff?: { owner: SocketOwner; socketId: number };
}

/** A binding op handler: runs on the host for a guest call (protocol/wall.ts OPS). */
export type OpHandler = (call: OpCall, args: unknown[]) => Promise<unknown>;

export interface OpRegistry {
  registerOp(op: string, handler: OpHandler): void;
}

/** A host op the guest calls synchronously (hostCallSync(op, invocationId, ...args)): for APIs
 *  that are synchronous on Workers (Durable Object ids, ctx.storage.sql). `args` exclude the
 *  invocation id; the answer is copied into the isolate. Keep it short: it runs while the guest waits. */
export type SyncOpHandler = (call: OpCall, args: unknown[]) => unknown;

export interface SyncOpRegistry {
  registerSyncOp(op: string, handler: SyncOpHandler): void;
}

/** A request as the host hands it to the runtime (the guest receives it as a WireRequest). */
export interface RuntimeRequest extends Omit<WireRequest, 'bodyStream' | 'urlSerialized'> {
  /** the body as it arrives (large or chunked uploads); never crosses the wall itself */
  bodyStream?: AsyncIterable<Uint8Array>;
}

/** What the runtime hands back for one fetch invocation. */
export interface RuntimeResponse {
  /** the worker's status, or the one its failure is answered with (500, or 503 over a limit) */
  status: number;
  statusText?: string;
  headers: [string, string][];
  body: string | ArrayBuffer | null;
  /** the body as a stream, when the worker answered with one (body is then null) */
  stream?: AsyncGenerator<Uint8Array | string, void, undefined>;
  /** the streamed body's length, when the guest knew it (bytes in hand sent as a stream) */
  bodyLength?: number;
  /** ms spent bringing up the worker's isolate, when this request had to (cold start) */
  coldMs: number | null;
  cpuMs: number;
  /** the guest's exception, when the handler threw */
  exception?: GuestException;
  /** it threw after calling ctx.passThroughOnException(): the request may go to the origin */
  passThrough?: boolean;
  limit?: LimitExceededError;
  loadError?: string;
  /** the worker is refused for now (quarantined): why, for the 503's body */
  refused?: string;
  /** status 101: the guest's end of the WebSocket the host is to hold (ingress completes the
   *  handshake and attaches; or, for a request that was no upgrade, tells the owner to drop it) */
  webSocket?: { owner: SocketOwner; socketId: number };
  requestId: string;
}

/** What Runtime.rpc answers (a service binding's RPC call): exactly one of these is set (value may
 *  be undefined itself). */
export interface RuntimeRpcResult {
  value?: unknown;
  /** the method's value counted past MAX_RPC_BYTES in the callee (bytes), not copied out
   *  (protocol/wall.ts rpcTooLarge says it) */
  oversize?: number;
  exception?: GuestException;
  limit?: LimitExceededError;
  loadError?: string;
  refused?: string;
}

// How many calls of one binding family an invocation may make (Workers allows 1,000 KV, R2 or
// cache calls per invocation, and D1 counts queries). Counted per invocation, by the OpCall's
// invocation; a call made outside any (a promise that outlived its request) is not counted.
/** workerd's words when an invocation makes too many calls. */
export const TOO_MANY_REQUESTS = 'Too many API requests by single worker invocation.';

export class OpAllowance {
  private readonly used = new WeakMap<OpInvocation, number>();

  constructor(
    private readonly max: number,
    private readonly refusal: string = TOO_MANY_REQUESTS,
  ) {}

  /** Count `calls` against the call's invocation; throws the refusal past the allowance. */
  take(call: OpCall, calls = 1): void {
    const invocation = call.invocation;
    if (!invocation) return;
    const total = (this.used.get(invocation) ?? 0) + calls;
    if (total > this.max) throw new Error(this.refusal);
    this.used.set(invocation, total);
  }
}
