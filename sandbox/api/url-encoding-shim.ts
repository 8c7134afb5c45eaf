// What whatwg-url's parser needs from `./encoding` (its own module, which builds a TextEncoder at
// load time: impossible here, the snapshot runs before any global exists) and from
// `@exodus/bytes/whatwg.js` (which drags in every legacy multi-byte encoding table, ~150 KB).
// scripts/build-sandbox.mjs redirects both imports to this file.
//
// Workers have no document encoding: every URL query is encoded as UTF-8, so
// percentEncodeAfterEncoding only needs its UTF-8 branch.
import { utf8Encode, utf8DecodeWithoutBOM } from './encoding.js';

export { utf8Encode, utf8DecodeWithoutBOM };

const HEX = '0123456789ABCDEF';

/**
 * URL "percent-encode after encoding" for UTF-8: bytes in the C0-control set (< 0x20, > 0x7E) and
 * the characters listed in `extraSet` become %XX; a space becomes "+" when spaceAsPlus.
 */
export function percentEncodeAfterEncoding(_encoding: string, input: string, extraSet: string, spaceAsPlus = false): string {
  let out = '';
  let clean = 0; // start of the run of characters that need no encoding
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && !extraSet.includes(input[i]) && !(spaceAsPlus && c === 0x20)) continue;
    out += input.slice(clean, i);
    if (spaceAsPlus && c === 0x20) {
      out += '+';
    } else {
      // One code point (a surrogate pair counts as one; a lone surrogate encodes as U+FFFD).
      const pair = c >= 0xd800 && c <= 0xdbff && (input.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      for (const byte of utf8Encode(input.slice(i, pair ? i + 2 : i + 1))) {
        out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
      }
      if (pair) i++;
    }
    clean = i + 1;
  }
  return clean === 0 ? input : out + input.slice(clean);
}
