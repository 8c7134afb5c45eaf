// Requests and responses as they cross the isolate wall (the shapes are protocol/wall.ts), converted
// to and from the guest's Request/Response classes, and the response streams the host pulls.
import { createIncomingRequest, type Request } from './api/request.js';
import { LazyCf } from './api/cf.js';
import { createIncomingResponse, type Response } from './api/response.js';
import { hostByteStream, untouchedHostStream } from './host-stream.js';
import { bodyForWire, takeStreamForWire } from './api/body.js';
import { ReadableStream } from './api/streams.js';
import { describeError } from './report-error.js';
import { utf8Encode } from './api/encoding.js';
import { webSocketHooks } from './websocket-hooks.js';
import { currentInvocation, runAs } from './invocation.js';
import { MAX_RESPONSE_HEADER_BYTES, OVERSIZED_HEADERS_MESSAGE, type PulledChunk, type WireRequest, type WireResponse } from '../protocol/wall.js';

export function requestFromWire(wire: WireRequest): Request {
  const bodyless = wire.method === 'GET' || wire.method === 'HEAD';
  const body = bodyless ? null : wire.bodyStream !== undefined ? hostByteStream(wire.bodyStream) : wire.body !== null ? new Uint8Array(wire.body) : null;
  // As workerd builds incoming requests: any method the client sent, immutable headers, the
  // transferred body adopted without a copy.
  const cf = wire.cfFields ? new LazyCf(wire.cfFields, wire.headers) : wire.cf ? Object.freeze(wire.cf) : undefined;
  return createIncomingRequest({ method: wire.method, url: wire.url, urlSerialized: wire.urlSerialized === true, headers: wire.headers, body, cf });
}

// Streams the host is pulling (response bodies, outbound request bodies), by id.
interface ChunkReader {
  read(): Promise<{ value?: unknown; done: boolean }>;
  cancel(reason?: unknown): Promise<void>;
}
interface Offered {
  reader: ChunkReader;
  /** the invocation that offered it: a pull runs the stream's own code (a pull() callback, an
   *  HTMLRewriter handler) for that invocation, not for whichever ran last in this isolate */
  owner: number;
}
const outgoing = new Map<number, Offered>();
let nextStreamId = 1;

/** A body in hand larger than this goes to the host as a stream, pulled as the client reads, so
 *  that the host never holds a large body for a client that does not read it. */
const INLINE_RESPONSE_MAX = 256 * 1024;
/** Largest piece of a stream chunk handed to the host per pull (a guest may enqueue one huge chunk). */
const MAX_PULL_BYTES = 64 * 1024;

export async function responseToWire(response: Response): Promise<WireResponse> {
  const headers: [string, string][] = [];
  let headerBytes = 0;
  // Headers iteration yields each Set-Cookie separately (Fetch spec "sort and combine").
  for (const [name, value] of response.headers) {
    headerBytes += name.length + value.length;
    // (the host checks again; this spares copying an oversized set out of the isolate)
    if (headerBytes > MAX_RESPONSE_HEADER_BYTES) throw new TypeError(OVERSIZED_HEADERS_MESSAGE);
    headers.push([name, value]);
  }
  const wire: WireResponse = { status: response.status, statusText: response.statusText, headers, body: null };
  const webSocket = response.webSocket;
  if (webSocket !== null && webSocket !== undefined) {
    // (a 101 has no body: the socket's end is all that crosses)
    const hooks = webSocketHooks();
    if (!hooks || !hooks.isWebSocket(webSocket)) throw new TypeError("The response's webSocket is not a WebSocket.");
    wire.webSocket = hooks.transfer(webSocket);
    return wire;
  }
  const stream = takeStreamForWire(response);
  if (stream) {
    const hostStream = untouchedHostStream(stream);
    if (hostStream !== undefined) wire.hostStream = hostStream;
    else wire.stream = offerStream(stream);
  } else {
    const body = await bodyForWire(response);
    const size = body === null ? 0 : typeof body === 'string' ? body.length : body.byteLength;
    if (body !== null && size > INLINE_RESPONSE_MAX) {
      const bytes = typeof body === 'string' ? utf8Encode(body) : new Uint8Array(body);
      wire.stream = offerChunk(bytes);
      wire.bodyLength = bytes.byteLength;
    } else {
      wire.body = body;
    }
  }
  return wire;
}

/** Offer bytes in hand as a stream of one chunk (pullStream hands it out in pieces). */
function offerChunk(bytes: Uint8Array): number {
  let sent = false;
  const id = nextStreamId++;
  const reader: ChunkReader = {
    read: async () => {
      if (sent) return { done: true };
      sent = true;
      return { value: bytes, done: false };
    },
    cancel: async () => {},
  };
  outgoing.set(id, { reader, owner: currentInvocation() });
  return id;
}

// The rest of a chunk larger than MAX_PULL_BYTES, by stream id, handed out by the next pulls.
const remainders = new Map<number, Uint8Array | string>();

function piece(id: number, chunk: Uint8Array | string): ArrayBuffer | string {
  if (typeof chunk === 'string') {
    if (chunk.length > MAX_PULL_BYTES) {
      remainders.set(id, chunk.slice(MAX_PULL_BYTES));
      return chunk.slice(0, MAX_PULL_BYTES);
    }
    remainders.delete(id);
    return chunk;
  }
  if (chunk.byteLength > MAX_PULL_BYTES) {
    remainders.set(id, chunk.subarray(MAX_PULL_BYTES));
    return chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + MAX_PULL_BYTES) as ArrayBuffer;
  }
  remainders.delete(id);
  return chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? (chunk.buffer as ArrayBuffer) : (chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength) as ArrayBuffer);
}

/** Let the host pull a guest stream (a response body, an outbound request body) by id. */
export function offerStream(stream: ReadableStream<Uint8Array>): number {
  const id = nextStreamId++;
  outgoing.set(id, { reader: stream.getReader() as unknown as ChunkReader, owner: currentInvocation() });
  return id;
}

/** Host entry: the next chunk of a stream (ArrayBuffer), null at the end, or its error. */
export function pullStream(id: number): Promise<PulledChunk> {
  const rest = remainders.get(id);
  if (rest !== undefined) return Promise.resolve(piece(id, rest));
  const offered = outgoing.get(id);
  // The host stops pulling at the end (null), an error or a cancel: an id not offered here is a
  // miswired stream, failed loudly rather than ended as if empty (an empty upload would look whole).
  if (!offered) return Promise.resolve({ error: describeError(new TypeError(`stream ${id} is not offered by this isolate`)) });
  return runAs(offered.owner, () => readPiece(id, offered.reader));
}

async function readPiece(id: number, reader: ChunkReader): Promise<PulledChunk> {
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        outgoing.delete(id);
        return null;
      }
      if (typeof value === 'string') {
        if (value.length === 0) continue;
        return piece(id, value);
      }
      if (!ArrayBuffer.isView(value)) throw new TypeError('This TransformStream is being used as a byte stream, but received an object of non-ArrayBuffer/ArrayBufferView type on its writable side.');
      if (value.byteLength === 0) continue;
      const view = value as ArrayBufferView;
      return piece(id, new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    }
  } catch (error) {
    outgoing.delete(id);
    return { error: describeError(error) };
  }
}

/** Host entry: the client went away; cancel the stream so its source can stop. */
export function cancelStream(id: number): void {
  const offered = outgoing.get(id);
  outgoing.delete(id);
  remainders.delete(id);
  if (offered) runAs(offered.owner, () => offered.reader.cancel(new Error('client disconnected')).catch(() => {}));
}

/** A guest Request as wire data, for calls that leave the isolate (service bindings, fetch). */
export async function requestToWire(request: Request): Promise<WireRequest> {
  const headers: [string, string][] = [];
  for (const [name, value] of request.headers) headers.push([name, value]);
  const hasBody = request.body !== null && request.method !== 'GET' && request.method !== 'HEAD';
  return {
    method: request.method,
    url: request.url,
    headers,
    body: hasBody ? await request.arrayBuffer() : null,
  };
}

/** A wire response (from the host) as a guest Response. */
export function responseFromWire(wire: WireResponse & { url?: string; redirected?: boolean }, stream?: ReadableStream<Uint8Array>): Response {
  const body = stream ?? (wire.body instanceof ArrayBuffer ? new Uint8Array(wire.body) : wire.body);
  return createIncomingResponse({ status: wire.status, statusText: wire.statusText, headers: wire.headers, body, url: wire.url ?? '', redirected: wire.redirected ?? false });
}
