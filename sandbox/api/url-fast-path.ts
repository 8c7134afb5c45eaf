// A fast path for parsing the URLs a worker sees most: absolute http(s)/ws(s) URLs that are
// already in canonical form. whatwg-url's state machine costs 10–30 µs per URL in V8 (it looks up
// a method by a concatenated name for every code point), and every request parses at least one.
//
// The rule: return a URL record only when the full parser would return exactly the same one;
// otherwise return null and let the caller run the full parser. So everything below is
// conservative — any character that the parser would encode, decode, map, trim or treat
// specially sends the input to the slow path.
import type { URLRecord } from 'whatwg-url/lib/url-state-machine.js';

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443 };

// scheme://host[:port][/path][?query][#fragment], ASCII only, with a plain DNS-style host.
// Excluded here already: userinfo (no "@" in the host), IPv6 literals, backslashes (a path
// separator in special URLs), whitespace and controls (stripped or encoded by the parser).
const SHAPE = /^(https?|wss?):\/\/([A-Za-z0-9_.-]+)(?::([0-9]*))?(\/[^?#]*)?(?:\?([^#]*))?(?:#(.*))?$/;
// Characters the parser would percent-encode (or that need more thought) anywhere in the input.
// eslint-disable-next-line no-control-regex
const UNSAFE_ANYWHERE = /[^\x21-\x7e]|[\\"<>]/;
// Path percent-encode set extras (space, <, >, " are excluded above): ? is impossible here.
const UNSAFE_IN_PATH = /[`{}^]/;
// Special-query percent-encode set extra (space, ", <, > are excluded above).
const UNSAFE_IN_QUERY = /'/;
// Fragment percent-encode set extra.
const UNSAFE_IN_FRAGMENT = /`/;
// Segments the parser resolves: ".", "..", and their %2e spellings, in any case.
const DOT_SEGMENT = /^(?:\.|%2e)(?:\.|%2e)?$/i;
// A last host label the host parser would read as an IPv4 number ("10", "0x7f", "0X", "017").
const NUMBER_LABEL = /^(?:0x[0-9a-f]*|[0-9]+)$/i;

/** The parse of `input` if it is a canonical special URL the fast path can vouch for; else null. */
export function fastParse(input: string): URLRecord | null {
  if (UNSAFE_ANYWHERE.test(input)) return null;
  const m = SHAPE.exec(input);
  if (!m) return null;
  const [, scheme, rawHost, portText, pathText, query, fragment] = m;

  const host = rawHost.toLowerCase();
  // IDNA would validate Punycode labels; an IPv4-looking last label would be parsed as a number.
  if (host.startsWith('xn--') || host.includes('.xn--')) return null;
  const labels = host.endsWith('.') ? host.slice(0, -1).split('.') : host.split('.');
  const last = labels[labels.length - 1];
  if (last === '' || NUMBER_LABEL.test(last)) return null;

  let port: number | null = null;
  if (portText !== undefined && portText !== '') {
    const value = Number(portText);
    if (value > 65535) return null; // a failure: let the full parser report it
    port = value === DEFAULT_PORTS[scheme] ? null : value;
  }

  let path = [''];
  if (pathText !== undefined) {
    if (UNSAFE_IN_PATH.test(pathText)) return null;
    path = pathText.slice(1).split('/');
    if (path.some((segment) => DOT_SEGMENT.test(segment))) return null;
  }
  if (query !== undefined && UNSAFE_IN_QUERY.test(query)) return null;
  if (fragment !== undefined && UNSAFE_IN_FRAGMENT.test(fragment)) return null;

  return {
    scheme,
    username: '',
    password: '',
    host,
    port,
    path,
    query: query ?? null,
    fragment: fragment ?? null,
  };
}
