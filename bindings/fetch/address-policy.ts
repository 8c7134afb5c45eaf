// Which addresses a worker's outbound fetch may reach. `cinder serve` refuses private, loopback,
// link-local, CGNAT and cloud-metadata addresses, and every address of the host's own interfaces,
// unless the operator allows them (--allow-private-fetch, for all or for named origins).
//
// Two checks, because Node skips the `lookup` hook for IP literals: a URL's host is checked here
// on every hop before anything is sent (literals, in every form WHATWG URL normalises to), and a
// hostname's *resolved* address is checked at connect time (see connect-policy.ts), so a name that
// resolves (or re-resolves) to an internal address is refused too.
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, incl. 169.254.169.254 metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated, still routed by some stacks)
  ['ff00::', 8], // multicast
  ['fd00:ec2::254', 128], // AWS metadata over IPv6
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** The 16 bytes of an IPv6 address (any textual form Node accepts), or null. */
function ipv6Bytes(address: string): number[] | null {
  if (isIP(address) !== 6) return null;
  let text = address.replace(/%.*$/, '');
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const parts = dotted[1].split('.').map(Number);
    tail.push(parts[0], parts[1], parts[2], parts[3]);
    text = text.slice(0, -dotted[1].length).replace(/:$/, ':0');
    if (text.endsWith('::0')) text = text.slice(0, -1);
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string) => (s ? s.split(':').filter((g) => g !== '') : []);
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const wanted = 8 - tail.length / 2;
  const middle = rest === undefined ? [] : new Array(Math.max(0, wanted - left.length - right.length)).fill('0');
  const all = [...left, ...middle, ...right];
  if (all.length !== wanted) return null;
  const bytes: number[] = [];
  for (const group of all) {
    const n = parseInt(group, 16);
    bytes.push(n >> 8, n & 0xff);
  }
  return [...bytes, ...tail];
}

/** An IPv4 address carried inside an IPv6 one (v4-mapped, v4-compatible, NAT64, 6to4): the stack
 *  or a gateway may deliver those to the IPv4 address, so they are judged as it. */
function embeddedIpv4(bytes: number[]): string | null {
  const zero = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  const quad = (at: number) => bytes.slice(at, at + 4).join('.');
  if (zero(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return quad(12); // ::ffff:a.b.c.d
  if (zero(0, 12) && !zero(12, 16)) return quad(12); // ::a.b.c.d (deprecated compatible form)
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zero(4, 12)) return quad(12); // 64:ff9b::/96
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return quad(2); // 2002:aabb:ccdd::/48 (6to4)
  return null;
}

/** True when `address` (an IP literal) is one a tenant must not reach by default. */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 0) return false;
  if (family === 4) return blocked.check(bare, 'ipv4');
  const bytes = ipv6Bytes(bare);
  if (!bytes) return true; // a form we cannot read is not one we let through
  const v4 = embeddedIpv4(bytes);
  if (v4 && blocked.check(v4, 'ipv4')) return true;
  return blocked.check(bare, 'ipv6');
}

// The host's own addresses (its public one included: a service bound to 0.0.0.0, the admin API
// on a non-loopback interface). Interfaces change rarely; re-read at most every few seconds.
const OWN_ADDRESSES_TTL_MS = 5_000;
let ownAddresses: { at: number; v4: Set<string>; v6: Set<string> } | null = null;

function own(): { v4: Set<string>; v6: Set<string> } {
  const now = Date.now();
  if (ownAddresses && now - ownAddresses.at < OWN_ADDRESSES_TTL_MS) return ownAddresses;
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.family === 'IPv4') v4.add(info.address);
      else {
        const bytes = ipv6Bytes(info.address);
        if (bytes) v6.add(bytes.join(','));
      }
    }
  }
  ownAddresses = { at: now, v4, v6 };
  return ownAddresses;
}

/** True when `address` (an IP literal) is one of this host's own interface addresses. */
export function isOwnAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 0) return false;
  const mine = own();
  if (family === 4) return mine.v4.has(bare);
  const bytes = ipv6Bytes(bare);
  if (!bytes) return false;
  const v4 = embeddedIpv4(bytes);
  return mine.v6.has(bytes.join(',')) || (v4 !== null && mine.v4.has(v4));
}

/** An address the default policy refuses: private or reserved, or the host's own. */
export function isRefusedAddress(address: string): boolean {
  return isPrivateAddress(address) || isOwnAddress(address);
}

/**
 * The operator's allowance. `true`: every address (cinder dev, trusted set-ups); a list: exactly
 * these origins or hosts, e.g. `127.0.0.1:9000` or `internal.example` (an entry without a port
 * allows every port of that host); `false`: none.
 */
export type PrivateAllowance = boolean | readonly string[];

/** Normalised allowance entries: "host" or "host:port", hosts as WHATWG URL writes them. */
export function parseAllowance(allowance: PrivateAllowance): boolean | Set<string> {
  if (typeof allowance === 'boolean') return allowance;
  const entries = new Set<string>();
  for (const raw of allowance) {
    const text = raw.trim();
    if (!text) continue;
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
    entries.add(url.port ? `${url.hostname}:${url.port}` : url.hostname);
  }
  return entries;
}

/** Whether the allowance lets a request reach `hostname` (as in a URL) on `port`. */
export function allowedByOperator(allowance: boolean | Set<string>, hostname: string, port: string): boolean {
  if (typeof allowance === 'boolean') return allowance;
  return allowance.has(hostname) || allowance.has(`${hostname}:${port}`);
}
