// How requests go into an isolate and answers come out of it, host side (the guest's half is
// sandbox/dispatch.ts and sandbox/wire.ts): a request without bytes crosses as one JSON string,
// bodies by copy or transfer; an answer comes back copied or as JSON, and is checked for the
// shape the host relies on, since the guest is untrusted.
import ivm from './ivm.js';
import { OVERSIZED_HEADERS_MESSAGE, type SocketEvent, type DispatchResult, type WireRequest } from '../../protocol/wall.js';

/** The request URL parsed and serialized here when it can be (the guest then skips its parser,
 *  which is a noticeable part of the first request into a fresh isolate); as given otherwise, for the guest to
 *  reject as workerd would. */
export function serializedUrl(url: string): { url: string; urlSerialized?: true } {
  try {
    return { url: new URL(url).href, urlSerialized: true };
  } catch {
    return { url };
  }
}

export function parseJsonOrUndefined(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

/** A guest's answer to an event (copied, or JSON-encoded: see encodeResult in sandbox/dispatch.ts),
 *  checked for the shape the host relies on: the guest is untrusted. */
export function decodeGuestResult<T>(answer: unknown): DispatchResult<T> {
  const out = typeof answer === 'string' ? parseJsonOrUndefined(answer) : answer;
  const shaped = out as DispatchResult<unknown> | undefined;
  if (!shaped || typeof shaped !== 'object' || !isObjectOrAbsent(shaped.result) || !isObjectOrAbsent(shaped.exception)) return malformedResult();
  return shaped as DispatchResult<T>;
}

function isObjectOrAbsent(value: unknown): boolean {
  return value === undefined || (typeof value === 'object' && value !== null);
}

export function malformedResult<T>(): DispatchResult<T> {
  const message = 'The worker answered with a malformed result';
  return { exception: { name: 'TypeError', message, stack: `TypeError: ${message}` }, pending: false };
}

/** The guest's answer when its response headers are over the limit (the guest's own check in
 *  sandbox/wire.ts normally throws first; this one is the one the host relies on). */
export function oversizedHeaders<T>(): DispatchResult<T> {
  const message = OVERSIZED_HEADERS_MESSAGE;
  return { exception: { name: 'TypeError', message, stack: `TypeError: ${message}` }, pending: false };
}

/** A request without a body in hand crosses as one JSON string (cheapest); small bodies by copy;
 *  large ones are transferred (no copy) into the isolate. */
export function wireArgument(request: WireRequest): unknown {
  if (request.body == null) return JSON.stringify(request);
  if (request.body && request.body.byteLength > 64 * 1024) {
    return new ivm.ExternalCopy(request, { transferList: [request.body], transferOut: true }).copyInto({ release: true, transferIn: true });
  }
  return new ivm.ExternalCopy(request).copyInto({ release: true });
}


/** A WebSocket event as it crosses into the guest: copied (a binary message's bytes with it). */
export function socketEventArgument(event: SocketEvent): unknown {
  return new ivm.ExternalCopy(event).copyInto({ release: true });
}
