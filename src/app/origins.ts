// Forwarding to an origin for ctx.passThroughOnException() (data-plane/origin.ts has the rules):
// the request as it came (method, path and query, headers with the Host the client sent, the body
// the host still holds), under the operator's address policy as a worker's own fetch is
// (bindings/fetch): a private, loopback or link-local origin needs --allow-private-fetch.
import { Readable } from 'node:stream';
import { Agent, request as undiciRequest } from 'undici';
import { parseAllowance, type PrivateAllowance } from '../../bindings/fetch/address-policy.js';
import { checkTarget, policyLookup } from '../../bindings/fetch/targets.js';
import { originMatcher, type OriginForwarder, type OriginRule } from '../data-plane/origin.js';

// Hop-by-hop headers are the connection's, not the request's.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'content-length']);

export function createOriginForwarder(rules: readonly OriginRule[], allowPrivate: PrivateAllowance): OriginForwarder & { close(): Promise<void> } {
  const allowance = parseAllowance(allowPrivate);
  const agent = new Agent({ connect: { lookup: policyLookup(allowance) }, connections: 64 });
  const originFor = originMatcher(rules);
  return {
    originFor,
    async forward(request) {
      const url = new URL(request.url);
      checkTarget(url, allowance);
      const headers: string[] = [];
      // A streamed body keeps the length the client declared (undici checks it is kept); a body in
      // hand gets its own.
      const streamed = request.body !== null && !(request.body instanceof ArrayBuffer);
      for (const [name, value] of request.headers) {
        const lower = name.toLowerCase();
        if (!HOP_BY_HOP.has(lower) || (streamed && lower === 'content-length')) headers.push(name, value);
      }
      const answer = await undiciRequest(url, {
        method: request.method as never,
        headers,
        body: request.body === null ? undefined : request.body instanceof ArrayBuffer ? Buffer.from(request.body) : Readable.from(request.body, { objectMode: false }),
        dispatcher: agent,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
      const pairs: [string, string][] = [];
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value === undefined) continue;
        for (const one of Array.isArray(value) ? value : [value]) pairs.push([name, one]);
      }
      return { status: answer.statusCode, headers: pairs, body: answer.body };
    },
    close: () => agent.close(),
  };
}
