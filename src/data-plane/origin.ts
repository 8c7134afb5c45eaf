// Origins for ctx.passThroughOnException(). On Cloudflare a zone proxies to an origin (its DNS
// record), and a worker that throws after calling passThroughOnException() has its request sent
// there as if no worker ran. Here the operator names the origins (`cinder serve --origin
// PATTERN=URL`, PATTERN as a route pattern: "example.com/*", "*.example.com/api/*"); the most
// specific pattern that matches the request's host and path wins. The forwarding itself (under
// the operator's address policy) is the app's to wire: the data plane knows only this interface.
import { compileRoute } from './router.js';
import { normalizeHost } from '../model/route-pattern.js';

export interface OriginRequest {
  method: string;
  /** the origin's URL with the request's path and query */
  url: string;
  headers: [string, string][];
  /** the body in hand, or streamed (what the worker read, then the rest from the client) */
  body: ArrayBuffer | AsyncIterable<Uint8Array> | null;
}

export interface OriginResponse {
  status: number;
  headers: [string, string][];
  body: AsyncIterable<Uint8Array>;
}

export interface OriginForwarder {
  /** the origin (scheme://host[:port], maybe a base path) for a request, or null */
  originFor(host: string, path: string): string | null;
  forward(request: OriginRequest): Promise<OriginResponse>;
}

export interface OriginRule {
  pattern: string;
  origin: string;
}

/** Parse `--origin PATTERN=URL` entries; throws naming a bad one. */
export function parseOriginRules(entries: readonly string[]): OriginRule[] {
  return entries.map((entry) => {
    const at = entry.lastIndexOf('=http');
    if (at <= 0) throw new Error(`--origin "${entry}": expected PATTERN=URL, e.g. "example.com/*=http://10.0.0.5:8080"`);
    const pattern = entry.slice(0, at).trim();
    const origin = entry.slice(at + 1).trim();
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new Error(`--origin "${entry}": "${origin}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--origin "${entry}": the origin must be an http or https URL`);
    if (url.search || url.hash) throw new Error(`--origin "${entry}": the origin URL must have no query or fragment`);
    return { pattern: pattern.includes('/') ? pattern : `${pattern}/*`, origin: url.href.replace(/\/$/, '') };
  });
}

/** The origin lookup for a set of rules (most specific pattern first, as routes are matched). */
export function originMatcher(rules: readonly OriginRule[]): (host: string, path: string) => string | null {
  const compiled = rules.map((rule) => ({ ...compileRoute({ pattern: rule.pattern, worker: '' }), origin: rule.origin })).sort((a, b) => b.specificity - a.specificity);
  return (host, path) => {
    const hostname = normalizeHost(host) ?? '';
    for (const rule of compiled) if (rule.host.test(hostname) && rule.path.test(path)) return rule.origin;
    return null;
  };
}
