// The plain-data shapes in which requests and responses cross the isolate wall, and their
// conversion to and from the guest's Request/Response classes.
import { Request } from './api/request.js';
import { Response } from './api/response.js';
import { bodyForWire } from './api/body.js';

export interface WireRequest {
  method: string;
  url: string;
  /** header pairs in arrival order; repeated names stay repeated */
  headers: [string, string][];
  /** the whole body, transferred (not copied) into the isolate; null for none */
  body: ArrayBuffer | null;
  cf?: Record<string, unknown>;
}

export interface WireResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  /** strings cross as strings (the host encodes them natively); bytes as an ArrayBuffer */
  body: string | ArrayBuffer | null;
}

export function requestFromWire(wire: WireRequest): Request {
  const hasBody = wire.body !== null && wire.method !== 'GET' && wire.method !== 'HEAD';
  const request = new Request(wire.url, {
    method: wire.method,
    headers: wire.headers,
    body: hasBody ? new Uint8Array(wire.body as ArrayBuffer) : null,
  });
  if (wire.cf) Object.defineProperty(request, 'cf', { value: Object.freeze(wire.cf), enumerable: true });
  return request;
}

export async function responseToWire(response: Response): Promise<WireResponse> {
  const headers: [string, string][] = [];
  // Headers iteration yields each Set-Cookie separately (Fetch spec "sort and combine").
  for (const [name, value] of response.headers) headers.push([name, value]);
  return {
    status: response.status,
    statusText: response.statusText,
    headers,
    body: await bodyForWire(response),
  };
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
export function responseFromWire(wire: WireResponse): Response {
  const nullBody = wire.status === 101 || wire.status === 204 || wire.status === 205 || wire.status === 304;
  return new Response(nullBody ? null : wire.body, { status: wire.status, statusText: wire.statusText, headers: wire.headers });
}
