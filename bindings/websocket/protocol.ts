// What crosses the wall for WebSockets beyond protocol/wall.ts (WEBSOCKET_OPS, SocketEvent): the
// guest's outbound connection request and the host's answer. Types only.

/** fetch(url, { headers: { Upgrade: 'websocket' } }) as the guest hands it over. */
export interface WebSocketConnectRequest {
  url: string;
  headers: [string, string][];
}

/** The host's answer: 101 when the socket is open (its events follow under the guest's id), or
 *  the server's refusal (its status, headers and the start of its body). */
export interface WebSocketConnectAnswer {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: string | null;
  url: string;
}
