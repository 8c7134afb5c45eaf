// Whether a fetch may go to a URL, checked on the first hop and on every redirect hop before
// anything is sent, and at connect time for the address a hostname resolves to.
import dns from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { allowedByOperator, isRefusedAddress } from './address-policy.js';

export class PrivateAddressError extends TypeError {
  constructor(host: string) {
    // Made for the guest, which gets its message only: no host stack is captured (a worker can
    // make thousands of refused fetches; bench/README.md, issue 22: fan-out and SSRF).
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(`fetch to ${host} refused: private, loopback, link-local and this host's own addresses are not reachable from workers (cinder serve --allow-private-fetch allows them)`);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
  }
}

/** Throws a TypeError when `url` is not one a worker may fetch under `allowance`. */
export function checkTarget(url: URL, allowance: boolean | Set<string>): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`Fetch API cannot load: ${url.protocol} URLs are not supported`);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  if (allowedByOperator(allowance, url.hostname, port)) return;
  // WHATWG URL has already turned decimal, octal and hex IPv4 forms into dotted quads, and IPv6
  // into its compressed form in brackets; what is left to judge is the address itself.
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(literal) && isRefusedAddress(literal)) throw new PrivateAddressError(url.host);
  if (/^localhost\.?$|\.localhost\.?$/i.test(url.hostname)) throw new PrivateAddressError(url.host);
}

/** A `lookup` for sockets: refuses a hostname whose resolved address is internal, unless the
 *  operator allows that host. (Node never calls it for IP literals: checkTarget covers those.) */
export function policyLookup(allowance: boolean | Set<string>): LookupFunction {
  const allowedHost = (hostname: string) => allowance === true || (allowance instanceof Set && [...allowance].some((entry) => entry === hostname || entry.startsWith(`${hostname}:`)));
  return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, options.all ? [] : '', 0);
      // Every address a name resolves to is judged: the socket may try any of them.
      if (!allowedHost(hostname) && addresses.some((entry) => isRefusedAddress(entry.address))) return callback(new PrivateAddressError(hostname), options.all ? [] : '', 0);
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  }) as unknown as LookupFunction;
}
