// Host half of the guest's global fetch(): performed with undici, under the invocation's
// subrequest limit and the server's address policy, through the worker's own connection pool.
// Redirects are followed here, one checked hop at a time (redirect.ts, targets.ts). Response
// bodies come back inline when small and uncompressed, and otherwise as a host stream the guest
// pulls chunk by chunk (body-limit.ts).
import { fetch as undiciFetch } from 'undici';
import type { OpCall, OpHandler } from '../../src/runtime/contract.js';
import { parseAllowance, type PrivateAllowance } from './address-policy.js';
import { WorkerAgents, DEFAULT_AGENT_OPTIONS, type AgentOptions } from './agents.js';
import { boundedBody } from './body-limit.js';
import { isRedirect, nextHop, type Hop } from './redirect.js';
import { checkTarget, policyLookup, PrivateAddressError } from './targets.js';
import type { GuestFetchRequest, GuestFetchResponse } from './protocol.js';
import { chargeSubrequest } from '../../src/model/request-tree.js';
import { OPS } from '../../protocol/wall.js';


export interface FetchPolicy {
  /** private, loopback, link-local, metadata and own addresses the operator lets workers reach:
   *  all (true: cinder dev; --allow-private-fetch), none (false), or these hosts / host:port */
  allowPrivate: PrivateAllowance;
  /** per-worker connection pools */
  agents?: Partial<AgentOptions>;
}

/** Bodies up to this size (by Content-Length) come back in the same round trip. */
const INLINE_BODY_MAX = 64 * 1024;

function requestBody(call: OpCall, request: GuestFetchRequest): Hop['body'] {
  if (request.method === 'GET' || request.method === 'HEAD') return undefined;
  if (request.hostStream !== undefined) return call.takeHostStream(request.hostStream);
  if (request.bodyStream !== undefined) return call.guestStream(request.bodyStream);
  if (request.body === null) return undefined;
  return typeof request.body === 'string' ? request.body : new Uint8Array(request.body);
}

export function createFetchOps(policy: FetchPolicy): { fetch: OpHandler; abort: OpHandler; close(): Promise<void> } {
  const allowance = parseAllowance(policy.allowPrivate);
  const agents = new WorkerAgents(policyLookup(allowance), { ...DEFAULT_AGENT_OPTIONS, ...policy.agents });
  // In-flight fetches by the guest's fetchId, per isolate: every isolate of a worker numbers its
  // fetches from the same start (bindings/fetch/guest.ts; isolates made from one snapshot share
  // the counter's start), so a worker-wide key would let one isolate's abort or cleanup reach
  // another isolate's fetch.
  const inflightOf = (call: OpCall) => call.isolateState(OPS.fetch, () => new Map<number, AbortController>());

  const fetchOp: OpHandler = async (call: OpCall, args: unknown[]) => {
    const request = args[0] as GuestFetchRequest;
    chargeSubrequest(call.invocation, call.limits.subrequests);
    let url: URL;
    try {
      url = new URL(String(request.url));
    } catch {
      throw new TypeError(`Invalid URL: ${String(request.url)}`);
    }
    checkTarget(url, allowance);
    const redirectMode = request.redirect === 'manual' || request.redirect === 'error' ? request.redirect : 'follow';

    const controller = new AbortController();
    const inflight = inflightOf(call);
    const key = Number(request.fetchId);
    inflight.set(key, controller);
    // (only this fetch's own entry: a later one cannot share its id in this isolate, but be exact)
    const forget = () => {
      if (inflight.get(key) === controller) inflight.delete(key);
    };
    const pool = agents.acquire(call.worker.name);
    let streaming = false;
    try {
      let hop: Hop = { url, method: request.method, headers: request.headers, body: requestBody(call, request) };
      let redirects = 0;
      let response;
      for (;;) {
        response = await undiciFetch(hop.url, {
          method: hop.method,
          headers: hop.headers,
          body: hop.body as never,
          // Required by the Fetch spec (and undici) for a streamed request body.
          duplex: 'half',
          redirect: 'manual',
          signal: controller.signal,
          dispatcher: pool.dispatcher,
        });
        if (!isRedirect(response.status) || redirectMode === 'manual') break;
        if (redirectMode === 'error') {
          await response.body?.cancel();
          throw new TypeError(`fetch failed: redirect mode is "error" and ${hop.url.href} answered ${response.status}`);
        }
        const next = nextHop(hop, response.status, response.headers.get('location'), redirects);
        if (!next) break;
        await response.body?.cancel();
        checkTarget(next.url, allowance);
        redirects++;
        hop = next;
      }
      const headers: [string, string][] = [];
      response.headers.forEach((value, name) => {
        if (name !== 'set-cookie') headers.push([name, value]);
      });
      for (const cookie of response.headers.getSetCookie()) headers.push(['set-cookie', cookie]);
      const result: GuestFetchResponse = { status: response.status, statusText: response.statusText, headers, url: hop.url.href, redirected: redirects > 0, body: null };
      if (!response.body) return result;
      const length = Number(response.headers.get('content-length') ?? NaN);
      // A compressed body's Content-Length says nothing about what it inflates to: stream it.
      const encoded = response.headers.has('content-encoding');
      if (length <= INLINE_BODY_MAX && !encoded) {
        result.body = await response.arrayBuffer();
        if (call.invocation) call.invocation.bytesIn += result.body.byteLength;
        return result;
      }
      // What one subrequest may inflate to: no more than the isolate could hold.
      const limit = encoded ? call.limits.memoryMb * 1024 * 1024 : Infinity;
      const invocation = call.invocation;
      const body = boundedBody(response.body as AsyncIterable<Uint8Array>, limit, (bytes) => {
        if (invocation) invocation.bytesIn += bytes;
      });
      streaming = true;
      result.stream = call.openStream(
        (async function* () {
          try {
            yield* body;
          } finally {
            forget();
            pool.release();
          }
        })(),
      );
      return result;
    } catch (error) {
      if (error instanceof PrivateAddressError) throw new TypeError(error.message);
      const cause = (error as { cause?: Error }).cause;
      if (cause instanceof PrivateAddressError) throw new TypeError(cause.message);
      if ((error as Error).name === 'AbortError') throw error;
      if (error instanceof TypeError && error.message.startsWith('fetch failed:')) throw error;
      throw new TypeError(`fetch failed: ${cause?.message ?? (error as Error).message}`);
    } finally {
      // A streamed body keeps its controller (abortable) and its pool until it is read or closed.
      if (!streaming) {
        forget();
        pool.release();
      }
    }
  };

  const abortOp: OpHandler = async (call: OpCall, args: unknown[]) => {
    const inflight = inflightOf(call);
    const key = Number(args[0]);
    inflight.get(key)?.abort(new DOMException('The operation was aborted.', 'AbortError'));
    inflight.delete(key);
    return null;
  };

  return {
    fetch: fetchOp,
    abort: abortOp,
    close: () => agents.close(),
  };
}
