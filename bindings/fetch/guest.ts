// The guest's global fetch(): builds a Request, hands it to the host (bindings/fetch/host.ts),
// and turns the host's answer into a Response whose body is inline or a host stream.
import { hostCall } from '../../sandbox/bridge.js';
import { Request } from '../../sandbox/api/request.js';
import type { Response } from '../../sandbox/api/response.js';
import { hostByteStream, untouchedHostStream } from '../../sandbox/host-stream.js';
import { offerStream, responseFromWire } from '../../sandbox/wire.js';
import { bodyForWire, takeStreamForWire } from '../../sandbox/api/body.js';
import { DOMException } from '../../sandbox/api/dom-exception.js';
import type { GuestFetchResponse } from './protocol.js';
import { OPS } from '../../protocol/wall.js';
import { webSocketHooks } from '../../sandbox/websocket-hooks.js';
import { refuseInGlobalScope } from '../../sandbox/global-scope.js';

let nextFetchId = 1;

function abortError(signal: { reason?: unknown }): unknown {
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}

/** Throws (not rejects) from the worker's top level, as workerd does: the load fails naming why. */
export function fetch(input: unknown, init?: unknown): Promise<Response> {
  refuseInGlobalScope();
  return fetchInRequest(input, init);
}

async function fetchInRequest(input: unknown, init?: unknown): Promise<Response> {
  const request = new Request(input as string, init as Record<string, unknown>);
  const signal = request.signal;
  if (signal.aborted) throw abortError(signal);
  if (request.headers.get('upgrade')?.toLowerCase() === 'websocket') {
    // An outbound WebSocket: the add-on connects it (sandbox/addons/websocket.ts).
    const hooks = webSocketHooks();
    if (!hooks) throw new TypeError('fetch() with "Upgrade: websocket" needs WebSocket support, which this worker did not load: Cinder loads it for workers whose code names WebSocketPair, WebSocket, webSocket or websocket.');
    const headers: [string, string][] = [];
    for (const pair of request.headers) headers.push(pair as [string, string]);
    return hooks.connect({ url: request.url, headers }) as Promise<Response>;
  }
  const fetchId = nextFetchId++;
  // A body held in full goes in the same call; a stream body is pulled by the host as it sends.
  let body: string | ArrayBuffer | null = null;
  let bodyStream: number | undefined;
  let hostStream: number | undefined;
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    const stream = takeStreamForWire(request);
    if (stream) {
      hostStream = untouchedHostStream(stream);
      if (hostStream === undefined) bodyStream = offerStream(stream);
    } else {
      body = await bodyForWire(request);
    }
  }
  const headers: [string, string][] = [];
  for (const pair of request.headers) headers.push(pair as [string, string]);

  const call = hostCall<GuestFetchResponse>(OPS.fetch, { method: request.method, url: request.url, headers, body, bodyStream, hostStream, redirect: request.redirect, fetchId });
  let onAbort: (() => void) | null = null;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      hostCall(OPS.fetchAbort, fetchId).catch(() => {});
      reject(abortError(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const answer = await Promise.race([call, aborted]);
    const stream = answer.stream !== undefined ? hostByteStream(answer.stream) : undefined;
    if (request.method === 'HEAD') return responseFromWire({ ...answer, body: null });
    return responseFromWire(answer, stream);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
