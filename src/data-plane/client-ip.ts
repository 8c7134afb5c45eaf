// Who the client is, as a worker sees it: CF-Connecting-IP and X-Forwarded-For, as Cloudflare
// sets them. By default the ingress is the edge: CF-Connecting-IP is the socket's peer address
// (whatever the client sent under that name is dropped, so it cannot be spoofed) and the peer is
// appended to X-Forwarded-For. Behind proxies the operator names (--trust-proxy CIDR,...), a
// request from one of them keeps the CF-Connecting-IP it carries (or takes the last
// X-Forwarded-For hop, which that proxy wrote), and its CF-IPCountry and visitor location headers
// (CF-IPCity, CF-Region, CF-Timezone, ...) become request.cf's country and geo fields.
// Done in the one pass over the raw headers the ingress makes anyway.
import { BlockList, isIP } from 'node:net';

export type ProxyTrust = (address: string) => boolean;

/** Cloudflare's "Add visitor location headers" managed transform (request.cf's geo fields, in
 *  sandbox/api/cf.ts); CF-IPCountry is handled on its own. */
export const VISITOR_LOCATION_HEADERS: ReadonlySet<string> = new Set(['cf-ipcity', 'cf-ipcontinent', 'cf-iplatitude', 'cf-iplongitude', 'cf-region', 'cf-region-code', 'cf-metro-code', 'cf-postal-code', 'cf-timezone']);

/** `--trust-proxy` entries: addresses or CIDR ranges, IPv4 or IPv6. Throws naming a bad one. */
export function parseTrustedProxies(entries: readonly string[]): ProxyTrust {
  const list = new BlockList();
  for (const raw of entries) {
    const entry = raw.trim();
    if (!entry) continue;
    const [address, prefixText] = entry.split('/');
    const family = isIP(address);
    if (!family) throw new Error(`--trust-proxy: "${entry}" is not an IP address or CIDR range`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefixText === undefined) {
      list.addAddress(address, type);
      continue;
    }
    const prefix = Number(prefixText);
    if (!/^\d+$/.test(prefixText) || prefix > (family === 4 ? 32 : 128)) throw new Error(`--trust-proxy: "${entry}" has an invalid prefix length`);
    list.addSubnet(address, prefix, type);
  }
  return (address) => {
    const family = isIP(address);
    return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** The peer address as a worker sees it: an IPv4 client on a dual-stack socket without "::ffff:". */
export function peerAddress(remote: string | undefined): string {
  if (!remote) return '';
  return remote.startsWith('::ffff:') && isIP(remote.slice(7)) === 4 ? remote.slice(7) : remote;
}

export interface IncomingHeaders {
  headers: [string, string][];
  /** CF-IPCountry from a trusted proxy ("" otherwise) */
  country: string;
}

/**
 * The request's header pairs in arrival order (repeated names stay repeated), with
 * CF-Connecting-IP and X-Forwarded-For as the worker must see them.
 */
export function incomingHeaders(raw: string[], peer: string, trusted: boolean): IncomingHeaders {
  const headers: [string, string][] = [];
  let connectingIp = '';
  let forwardedAt = -1;
  let country = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    // Names are compared only when their length could match: this runs on every request.
    if (name.length === 16 && name.toLowerCase() === 'cf-connecting-ip') {
      if (trusted && !connectingIp) connectingIp = value.trim();
      continue;
    }
    if (name.length === 15 && name.toLowerCase() === 'x-forwarded-for') {
      if (forwardedAt === -1) {
        forwardedAt = headers.length;
        headers.push(['X-Forwarded-For', value]);
      } else headers[forwardedAt][1] += `, ${value}`;
      continue;
    }
    if (name.length === 12 && name.toLowerCase() === 'cf-ipcountry') {
      if (trusted) {
        country = value.trim();
        headers.push([name, value]);
      }
      continue;
    }
    // Cloudflare's visitor location headers: believed (and read into request.cf in the guest)
    // only from a trusted proxy, dropped from anyone else, like CF-IPCountry.
    if (name.length >= 9 && name.length <= 14 && name.charCodeAt(2) === 45 && VISITOR_LOCATION_HEADERS.has(name.toLowerCase())) {
      if (trusted) headers.push([name, value]);
      continue;
    }
    headers.push([name, value]);
  }
  if (trusted) {
    if (!connectingIp && forwardedAt !== -1) {
      const hops = headers[forwardedAt][1].split(',');
      connectingIp = hops[hops.length - 1].trim();
    }
    if (!isIP(connectingIp)) connectingIp = peer;
    if (forwardedAt === -1) headers.push(['X-Forwarded-For', connectingIp]);
  } else {
    connectingIp = peer;
    if (forwardedAt === -1) headers.push(['X-Forwarded-For', peer]);
    else headers[forwardedAt][1] += `, ${peer}`;
  }
  headers.push(['CF-Connecting-IP', connectingIp]);
  return { headers, country };
}
