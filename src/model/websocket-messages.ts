// What a guest hands the host about its WebSockets, checked at the crossing (the guest is
// untrusted). Shared by the WebSocket host and the Durable Object host (hibernated sockets):
// bindings cannot import each other.

/** a guest's batch of messages holds this many at most */
export const MAX_BATCH_MESSAGES = 4096;

export type WebSocketMessage = string | ArrayBuffer;

/** A guest's batch of messages: each at most `maxBytes`, the batch at most twice that. */
export function messagesOf(value: unknown, maxBytes: number): WebSocketMessage[] {
  if (!Array.isArray(value) || value.length > MAX_BATCH_MESSAGES) throw new TypeError('ws.send: expected an array of messages');
  let total = 0;
  for (const message of value) {
    const size = typeof message === 'string' ? Buffer.byteLength(message) : message instanceof ArrayBuffer ? message.byteLength : -1;
    if (size < 0) throw new TypeError('ws.send: a message must be a string or an ArrayBuffer');
    if (size > maxBytes) throw new RangeError(`WebSocket message too large: ${size} bytes (the limit is ${maxBytes}).`);
    total += size;
  }
  if (total > 2 * maxBytes) throw new RangeError('ws.send: batch too large');
  return value as WebSocketMessage[];
}

/** A socket id the guest names: a positive safe integer. */
export function socketIdOf(value: unknown): number {
  const id = Number(value);
  if (!Number.isSafeInteger(id) || id <= 0) throw new TypeError('invalid WebSocket id');
  return id;
}
