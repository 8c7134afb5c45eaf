// Route patterns compared by what they match, not by how they are spelled. `GOOD.example.com.:443/*`
// and `good.example.com/*` are one host; `*.example.com/*` and `good.example.com/login*` overlap.
// Shared by the router (the data plane matches with these rules) and the deployment store (which
// refuses a route of one account that could match a host another account claims): both must
// agree, or a pattern that looks different but matches the same hosts slips past the check.
import { domainToASCII } from 'node:url';

/** A stored pattern split in two: `host` normalised (see normalizeHost), `path` as given. */
export interface PatternParts {
  host: string;
  path: string;
}

// What a normalised host may hold: DNS letters, digits, dashes, dots, and `*` (any text).
const HOST_CHARS = /^[a-z0-9*.-]+$/;
const PATH_CHARS = /^\/[^\s]*$/;

/**
 * A host (pattern or request) in the one form the router compares: lowercase, no port, no
 * trailing dot (the FQDN spelling reaches the same site), internationalised names as punycode.
 * Null when nothing host-like is left.
 */
export function normalizeHost(raw: string): string | null {
  let host = raw.trim().replace(/:\d*$/, '');
  // IDNA: "gööd.example.com" and "xn--gd-fkaa.example.com" are one host; domainToASCII also
  // lowercases and maps full-width dots and letters. Skipped for plain ASCII (the request path).
  host = /[^\x00-\x7f]/.test(host) ? domainToASCII(host) : host.toLowerCase();
  host = host.replace(/\.+$/, '');
  return host && HOST_CHARS.test(host) && !host.includes('..') ? host : null;
}

/** A route pattern's host and path, or why it is not one. Scheme dropped, no path = every path. */
export function parsePattern(pattern: string): { parts?: PatternParts; error?: string } {
  const invalid = { error: `invalid route pattern "${pattern}" (expected host/path, e.g. example.com/api/*)` };
  if (typeof pattern !== 'string' || pattern.length > 1024) return invalid;
  const bare = pattern.trim().replace(/^https?:\/\//i, '');
  const slash = bare.indexOf('/');
  const host = normalizeHost(slash === -1 ? bare : bare.slice(0, slash));
  const path = slash === -1 ? '/*' : bare.slice(slash);
  if (!host || !PATH_CHARS.test(path)) return invalid;
  return { parts: { host, path } };
}

/** The stored spelling of a pattern: `host/path`, normalised. */
export function formatPattern(parts: PatternParts): string {
  return parts.host + parts.path;
}

/** A host pattern that is nothing but wildcards (`*`, `*.*`): it matches every host. */
export function isZoneWide(host: string): boolean {
  return /^[*.]+$/.test(host);
}

/**
 * Could some host match both patterns? `*` matches any text (as in the router). Decided on the
 * product of the two patterns, memoised: O(len(a) * len(b)), and hosts are short.
 */
export function hostsOverlap(a: string, b: string): boolean {
  const seen = new Set<number>();
  const width = b.length + 1;
  const walk = (i: number, j: number): boolean => {
    if (i === a.length && j === b.length) return true;
    const key = i * width + j;
    if (seen.has(key)) return false;
    seen.add(key);
    const starA = a[i] === '*';
    const starB = b[j] === '*';
    // a star matching nothing
    if (starA && walk(i + 1, j)) return true;
    if (starB && walk(i, j + 1)) return true;
    if (i < a.length && j < b.length) {
      // a star of one pattern swallowing a character the other pattern spells out
      if (starA && !starB && walk(i, j + 1)) return true;
      if (starB && !starA && walk(i + 1, j)) return true;
      if (!starA && !starB && a[i] === b[j] && walk(i + 1, j + 1)) return true;
    }
    return false;
  };
  return walk(0, 0);
}

/** The first label of a host pattern when it is spelled out (`good` in `good.example.com`). */
export function literalFirstLabel(host: string): string | null {
  const label = host.split('.')[0];
  return label && !label.includes('*') ? label : null;
}

/**
 * Why a tenant (scoped token) may not claim this host, or null. Wildcards only at the front of
 * the host, as on Cloudflare, and never one that spans a whole top-level domain or every host:
 * those would take traffic from hosts nobody in the account owns. The operator decides those.
 */
export function tenantHostError(host: string): string | null {
  if (isZoneWide(host)) return `"${host}" matches every host; only the operator token may claim such a route`;
  const rest = host.replace(/^\*\.?/, '');
  if (rest.includes('*')) return `"${host}" has a wildcard inside the host; a tenant's route may only start with one (*.example.com)`;
  if (rest.split('.').filter(Boolean).length < 2) return `"${host}" spans a whole top-level domain; only the operator token may claim such a route`;
  return null;
}
