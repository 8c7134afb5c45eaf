// Stand-in for the `tr46` package (UTS #46 IDNA processing), which whatwg-url's host parser calls
// as `tr46.toASCII(domain, options)`. scripts/build-sandbox.mjs aliases `tr46` to this file.
//
// Why: the real tr46 carries the full Unicode IDNA mapping table and Bidi/ContextJ regexes,
// ~236 KB of bundle, which every isolate would deserialize. This file is ~2 KB.
//
// What it does:
// - ASCII hosts (nearly all of them): exactly what UTS #46 does — lowercase, and check that each
//   `xn--` label is valid Punycode that decodes to a non-ASCII, NFC label without controls.
// - Non-ASCII hosts: approximates the UTS #46 mapping with NFKC + per-code-point lowercase
//   (UTS #46's table is essentially NFKC_Casefold, minus the deviation characters ß, ς, ZWJ and
//   ZWNJ, which lowercasing also keeps), drops the "ignored" code points, maps the ideographic
//   full stops to ".", then Punycode-encodes each non-ASCII label.
// Known gaps (hosts the real table would reject that we accept): code points UTS #46 marks
// "disallowed" beyond controls, unassigned, private-use, surrogates, separators and U+FFFD; labels
// starting with a combining mark are rejected, but the Bidi rule (RFC 5893) and ContextJ
// (RFC 5892) are not checked.
import { decode as punycodeDecode, encode as punycodeEncode } from 'punycode/punycode.es6.js';

export interface ToASCIIOptions {
  verifyDNSLength?: boolean;
}

// UTS #46 "ignored" code points (removed by the mapping step).
const IGNORED = /[\u00AD\u034F\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B\u2060-\u2064\u206A-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0100}-\u{E01EF}]/gu;
// What no valid label holds after mapping (a conservative subset of UTS #46 "disallowed").
const DISALLOWED = /[\p{Cc}\p{Cn}\p{Co}\p{Cs}\p{Zs}\p{Zl}\p{Zp}\uFFFD]/u;
const LEADING_MARK = /^\p{M}/u;
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7F]/;

/** UTS #46 ToASCII with CheckHyphens=false, UseSTD3ASCIIRules=false, nontransitional; null on error. */
export function toASCII(domain: string, options: ToASCIIOptions = {}): string | null {
  const mapped = NON_ASCII.test(domain) ? mapUnicode(domain) : domain.toLowerCase();
  const labels = mapped.split('.');
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label.startsWith('xn--')) {
      if (NON_ASCII.test(label) || !validPunycodeLabel(label)) return null;
    } else if (NON_ASCII.test(label)) {
      if (!validUnicodeLabel(label)) return null;
      try {
        labels[i] = `xn--${punycodeEncode(label)}`;
      } catch {
        return null;
      }
    }
  }
  const result = labels.join('.');
  if (options.verifyDNSLength) {
    if (result.length === 0 || result.length > 253) return null;
    if (labels.some((label) => label.length === 0 || label.length > 63)) return null;
  }
  return result;
}

function mapUnicode(domain: string): string {
  const folded = domain.normalize('NFKC').replace(IGNORED, '');
  // Per code point, so that a final capital sigma maps to σ as in UTS #46, not to ς.
  let lower = '';
  for (const ch of folded) lower += ch.toLowerCase();
  return lower.replace(/\u3002/g, '.').normalize('NFC');
}

function validUnicodeLabel(label: string): boolean {
  return label.normalize('NFC') === label && !DISALLOWED.test(label) && !LEADING_MARK.test(label);
}

function validPunycodeLabel(label: string): boolean {
  let decoded: string;
  try {
    decoded = punycodeDecode(label.slice(4));
  } catch {
    return false;
  }
  // UTS #46 (15.1+): an xn-- label must decode to something non-ASCII.
  return decoded !== '' && NON_ASCII.test(decoded) && validUnicodeLabel(decoded);
}
