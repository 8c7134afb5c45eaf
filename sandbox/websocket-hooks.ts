// Where the WebSocket add-on (sandbox/addons/websocket.ts) plugs into the base sandbox. The base
// knows nothing of WebSockets until the add-on is installed: Response refuses a `webSocket`,
// fetch() refuses an Upgrade: websocket request, and the dispatchSocketEvent entry answers with an
// exception, each naming what is missing. The add-on registers these hooks once, when installed.
import type { SocketEvent } from '../protocol/wall.js';

export interface WebSocketHooks {
  /** whether `value` is one of the add-on's WebSocket objects */
  isWebSocket(value: unknown): boolean;
  /** a 101 response's WebSocket is leaving for the host: its guest socket id (throws when it cannot) */
  transfer(webSocket: unknown): number;
  /** an event from the host for guest socket `socketId`; answers the promises its listeners returned */
  deliver(socketId: number, event: SocketEvent): Promise<unknown>[];
  /** fetch() with Upgrade: websocket (the request as fetch built it) */
  connect(request: { url: string; headers: [string, string][] }): Promise<unknown>;

  // The Durable Object hibernation API (bindings/durable-objects/guest.ts):
  /** ctx.acceptWebSocket(ws): `ws` (a pair's server end, never accepted) becomes hibernatable under
   *  the host id `allocate()` returns; its pair's client end then stands for that socket */
  hibernate(webSocket: unknown, allocate: () => number): void;
  /** the hibernatable WebSocket with host id `id`, the same object for as long as this isolate lives */
  revive(id: number): unknown;
  /** the host id of a hibernatable WebSocket, or null */
  hibernatableId(webSocket: unknown): number | null;
  /** the host id a client end stands for (its server end was accepted with acceptWebSocket), or null */
  foreignId(webSocket: unknown): number | null;
  /** a hibernatable socket's close or error is being delivered: its state changes as for a listener */
  hibernatedEvent(id: number, event: SocketEvent): void;
  /** a stub's fetch: a fresh guest socket id for a WebSocket the object may answer with, and the
   *  end that stands for it in this isolate (only ever returned in a 101) */
  reserveId(): number;
  foreignEnd(id: number): unknown;
  /** a Durable Object's isolate: its sockets' events (but 'open') run through `gate` (the input gate) */
  setEventGate(gate: (run: () => Promise<unknown>[]) => Promise<unknown>[]): void;
}

let hooks: WebSocketHooks | null = null;

export function registerWebSocketHooks(given: WebSocketHooks): void {
  hooks = given;
}

export function webSocketHooks(): WebSocketHooks | null {
  return hooks;
}
