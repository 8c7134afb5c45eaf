// The guest's global fetch(): builds a Request, hands it to the host (bindings/fetch/host.ts),
// and turns the host's answer into a Response whose body is inline or a host stream.
import { hostCall } from './bridge.js';
import { Request } from './api/request.js';
import { Response } from './api/response.js';
import { ReadableStream } from './api/streams.js';
import { DOMException } from './api/dom-exception.js';

interface HostFetchResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  url: string;
  redirected: boolean;
  body: ArrayBuffer | null;
  stream?: number;
}

let nextFetchId = 1;

function hostStream(id: number): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    type: 'bytes',
    async pull(controller) {
      const chunk = await hostCall<ArrayBuffer | null>('body.read', id);
      if (chunk === null) controller.close();
      else if (chunk.byteLength) controller.enqueue(new Uint8Array(chunk));
    },
  });
}

function abortError(signal: { reason?: unknown }): unknown {
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}

export async function fetch(input: unknown, init?: unknown): Promise<Response> {
  const request = new Request(input as string, init as Record<string, unknown>);
  const signal = request.signal;
  if (signal.aborted) throw abortError(signal);
  const fetchId = nextFetchId++;
  const body = request.body === null || request.method === 'GET' || request.method === 'HEAD' ? null : await request.arrayBuffer();
  const headers: [string, string][] = [];
  for (const pair of request.headers) headers.push(pair as [string, string]);

  const call = hostCall<HostFetchResponse>('fetch', { method: request.method, url: request.url, headers, body, redirect: request.redirect, fetchId });
  let onAbort: (() => void) | null = null;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      hostCall('fetch.abort', fetchId).catch(() => {});
      reject(abortError(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const answer = await Promise.race([call, aborted]);
    const nullBody = answer.status === 101 || answer.status === 204 || answer.status === 205 || answer.status === 304 || request.method === 'HEAD';
    const responseBody = nullBody ? null : answer.stream !== undefined ? hostStream(answer.stream) : answer.body;
    const response = new Response(responseBody, { status: answer.status, statusText: answer.statusText, headers: answer.headers });
    // url and redirected are read-only on Response; a fetched response carries them.
    Object.defineProperty(response, 'url', { value: answer.url, enumerable: true });
    Object.defineProperty(response, 'redirected', { value: answer.redirected, enumerable: true });
    return response;
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
