// Host half of the guest's global fetch(): performed with undici, under the invocation's
// subrequest limit and the server's address policy. Response bodies come back inline when small
// and as a host stream (read by the guest chunk by chunk) otherwise.
import dns from 'node:dns';
import { isIP } from 'node:net';
import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';
import type { OpCall, OpHandler } from '../../src/runtime/contract.js';
import { isPrivateAddress } from './address-policy.js';
import type { GuestFetchRequest, GuestFetchResponse } from './protocol.js';

export interface FetchPolicy {
  /** allow private, loopback, link-local and metadata addresses (cinder dev; tests) */
  allowPrivate: boolean;
}

/** Bodies up to this size (by Content-Length) come back in the same round trip. */
const INLINE_BODY_MAX = 64 * 1024;

export class PrivateAddressError extends Error {
  constructor(host: string) {
    super(`fetch to ${host} refused: private, loopback and link-local addresses are not reachable from workers (cinder serve --allow-private-fetch allows them)`);
    this.name = 'TypeError';
  }
}

function policyAgent(policy: FetchPolicy): Dispatcher {
  if (policy.allowPrivate) return new Agent({ connections: 128 });
  return new Agent({
    connections: 128,
    connect: {
      // Checked on the address the socket will actually use.
      lookup(hostname, options, callback) {
        dns.lookup(hostname, { ...options, all: false }, (error, address, family) => {
          if (error) return callback(error, '', 0);
          if (isPrivateAddress(address as string)) return callback(new PrivateAddressError(hostname), '', 0);
          callback(null, address as string, family as number);
        });
      },
    },
  });
}

function requestBody(call: OpCall, request: GuestFetchRequest): string | Uint8Array | AsyncIterable<Uint8Array> | undefined {
  if (request.method === 'GET' || request.method === 'HEAD') return undefined;
  if (request.hostStream !== undefined) return call.takeHostStream(request.hostStream);
  if (request.bodyStream !== undefined) return call.guestStream(request.bodyStream);
  if (request.body === null) return undefined;
  return typeof request.body === 'string' ? request.body : new Uint8Array(request.body);
}

export function createFetchOps(policy: FetchPolicy): { fetch: OpHandler; abort: OpHandler; close(): Promise<void> } {
  const dispatcher = policyAgent(policy);
  const inflight = new Map<string, AbortController>();

  const fetchOp: OpHandler = async (call: OpCall, args: unknown[]) => {
    const request = args[0] as GuestFetchRequest;
    const invocation = call.invocation;
    if (invocation) {
      invocation.subrequests++;
      if (invocation.subrequests > call.limits.subrequests) {
        throw new TypeError(`Too many subrequests: this invocation may make at most ${call.limits.subrequests}.`);
      }
    }
    let url: URL;
    try {
      url = new URL(String(request.url));
    } catch {
      throw new TypeError(`Invalid URL: ${String(request.url)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`Fetch API cannot load: ${url.protocol} URLs are not supported`);
    const literal = url.hostname.replace(/^\[|\]$/g, '');
    if (!policy.allowPrivate && isIP(literal) && isPrivateAddress(literal)) throw new PrivateAddressError(url.hostname);
    if (!policy.allowPrivate && /^localhost$|\.localhost$/i.test(url.hostname)) throw new PrivateAddressError(url.hostname);

    const controller = new AbortController();
    const key = `${call.worker.name}:${request.fetchId}`;
    inflight.set(key, controller);
    let streaming = false;
    try {
      const response = await undiciFetch(url, {
        method: request.method,
        headers: request.headers,
        body: requestBody(call, request),
        // Required by the Fetch spec (and undici) for a streamed request body.
        duplex: 'half',
        redirect: request.redirect,
        signal: controller.signal,
        dispatcher,
      });
      const headers: [string, string][] = [];
      response.headers.forEach((value, name) => {
        if (name !== 'set-cookie') headers.push([name, value]);
      });
      for (const cookie of response.headers.getSetCookie()) headers.push(['set-cookie', cookie]);
      const result: GuestFetchResponse = { status: response.status, statusText: response.statusText, headers, url: response.url, redirected: response.redirected, body: null };
      const length = Number(response.headers.get('content-length') ?? NaN);
      if (!response.body) return result;
      if (length <= INLINE_BODY_MAX) {
        result.body = await response.arrayBuffer();
        return result;
      }
      const reader = response.body;
      streaming = true;
      result.stream = call.openStream(
        (async function* () {
          try {
            for await (const chunk of reader as AsyncIterable<Uint8Array>) yield chunk;
          } finally {
            inflight.delete(key);
          }
        })(),
      );
      return result;
    } catch (error) {
      const cause = (error as { cause?: Error }).cause;
      if (cause instanceof PrivateAddressError) throw new TypeError(cause.message);
      if ((error as Error).name === 'AbortError') throw error;
      throw new TypeError(`fetch failed: ${cause?.message ?? (error as Error).message}`);
    } finally {
      // A streamed body keeps its controller (abortable) until the stream is read or closed.
      if (!streaming) inflight.delete(key);
    }
  };

  const abortOp: OpHandler = async (call: OpCall, args: unknown[]) => {
    const key = `${call.worker.name}:${Number(args[0])}`;
    inflight.get(key)?.abort(new DOMException('The operation was aborted.', 'AbortError'));
    inflight.delete(key);
    return null;
  };

  return {
    fetch: fetchOp,
    abort: abortOp,
    close: () => dispatcher.close(),
  };
}
