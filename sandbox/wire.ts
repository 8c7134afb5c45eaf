// Requests and responses as they cross the isolate wall (the shapes are protocol/wall.ts), converted
// to and from the guest's Request/Response classes, and the response streams the host pulls.
import { createIncomingRequest, type Request } from './api/request.js';
import { createIncomingResponse, type Response } from './api/response.js';
import { hostByteStream, untouchedHostStream } from './host-stream.js';
import { bodyForWire, takeStreamForWire } from './api/body.js';
import { ReadableStream } from './api/streams.js';
import { describeError } from './report-error.js';
import type { PulledChunk, WireRequest, WireResponse } from '../protocol/wall.js';

export function requestFromWire(wire: WireRequest): Request {
  const bodyless = wire.method === 'GET' || wire.method === 'HEAD';
  const body = bodyless ? null : wire.bodyStream !== undefined ? hostByteStream(wire.bodyStream) : wire.body !== null ? new Uint8Array(wire.body) : null;
  // As workerd builds incoming requests: any method the client sent, immutable headers, the
  // transferred body adopted without a copy.
  return createIncomingRequest({ method: wire.method, url: wire.url, urlSerialized: wire.urlSerialized === true, headers: wire.headers, body, cf: wire.cf ? Object.freeze(wire.cf) : undefined });
}

// Response streams the host is pulling, by id.
interface ChunkReader {
  read(): Promise<{ value?: unknown; done: boolean }>;
  cancel(reason?: unknown): Promise<void>;
}
const outgoing = new Map<number, ChunkReader>();
let nextStreamId = 1;

export async function responseToWire(response: Response): Promise<WireResponse> {
  const headers: [string, string][] = [];
  // Headers iteration yields each Set-Cookie separately (Fetch spec "sort and combine").
  for (const [name, value] of response.headers) headers.push([name, value]);
  const wire: WireResponse = { status: response.status, statusText: response.statusText, headers, body: null };
  const stream = takeStreamForWire(response);
  if (stream) {
    const hostStream = untouchedHostStream(stream);
    if (hostStream !== undefined) wire.hostStream = hostStream;
    else wire.stream = offerStream(stream);
  } else {
    wire.body = await bodyForWire(response);
  }
  return wire;
}

/** Let the host pull a guest stream (a response body, an outbound request body) by id. */
export function offerStream(stream: ReadableStream<Uint8Array>): number {
  const id = nextStreamId++;
  outgoing.set(id, stream.getReader() as unknown as ChunkReader);
  return id;
}

/** Host entry: the next chunk of a response stream (ArrayBuffer), null at the end, or its error. */
export async function pullStream(id: number): Promise<PulledChunk> {
  const reader = outgoing.get(id);
  if (!reader) return null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        outgoing.delete(id);
        return null;
      }
      if (typeof value === 'string') return value;
      if (!ArrayBuffer.isView(value)) throw new TypeError('This TransformStream is being used as a byte stream, but received an object of non-ArrayBuffer/ArrayBufferView type on its writable side.');
      if (value.byteLength === 0) continue;
      const view = value as Uint8Array;
      return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength ? (view.buffer as ArrayBuffer) : (view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength) as ArrayBuffer);
    }
  } catch (error) {
    outgoing.delete(id);
    return { error: describeError(error) };
  }
}

/** Host entry: the client went away; cancel the stream so its source can stop. */
export function cancelStream(id: number): void {
  const reader = outgoing.get(id);
  outgoing.delete(id);
  reader?.cancel(new Error('client disconnected')).catch(() => {});
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
