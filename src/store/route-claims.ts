// Whether an account may claim route patterns, given what other accounts hold. Pure, so every
// store (SQLite now, Redis later) runs the same rule inside its own transaction:
//   - a pattern whose host could match a host of another account's route conflicts, whatever the
//     paths (one host is one origin: cookies and storage are shared across its paths);
//   - a pattern spelling out `<name>.…` conflicts when <name> is another account's worker, whose
//     hosts `<name>.<anything>` it would otherwise take (routes beat host names in the router);
//   - wildcard-only hosts (`*/*`, which only the operator may claim) conflict with nothing: they
//     lose to every more specific route, and the router keeps them off other accounts' worker
//     hosts (data-plane/router.ts).
import { hostsOverlap, isZoneWide, literalFirstLabel, parsePattern } from '../model/route-pattern.js';

export interface RouteClaimConflict {
  /** the pattern that cannot be claimed */
  pattern: string;
  /** what it collides with, in words for the 409 */
  claim: string;
}

export function findRouteClaimConflict(patterns: string[], otherAccountsPatterns: string[], isOtherAccountsWorker: (name: string) => boolean): RouteClaimConflict | null {
  const hostOf = (pattern: string) => parsePattern(pattern).parts?.host ?? pattern;
  const others = otherAccountsPatterns.map((pattern) => ({ pattern, host: hostOf(pattern) })).filter((o) => !isZoneWide(o.host));
  for (const pattern of patterns) {
    const host = hostOf(pattern);
    if (isZoneWide(host)) continue;
    const label = literalFirstLabel(host);
    if (label && host.includes('.') && isOtherAccountsWorker(label)) return { pattern, claim: `the worker name "${label}" (its hosts ${label}.<anything>)` };
    const other = others.find((o) => hostsOverlap(host, o.host));
    if (other) return { pattern, claim: `the route "${other.pattern}"` };
  }
  return null;
}
