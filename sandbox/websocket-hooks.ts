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
}

let hooks: WebSocketHooks | null = null;

export function registerWebSocketHooks(given: WebSocketHooks): void {
  hooks = given;
}

export function webSocketHooks(): WebSocketHooks | null {
  return hooks;
}
