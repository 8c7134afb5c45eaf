// Key order, prefix ranges and list cursors, shared by every backend so that all of them list in
// the same order. KV lists keys in the lexicographic order of their UTF-8 bytes; SQLite (BINARY
// collation) and Redis (ZRANGEBYLEX) compare bytes natively, and for well-formed strings that is
// the same as comparing code points, which is what the memory backend does.

/** Compare two well-formed strings by code point (= by UTF-8 bytes). */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 puts astral code points (surrogates, 0xD800-0xDFFF) below 0xE000-0xFFFF; in code
    // point order they come after every BMP character. Shift both ranges to fix that.
    return fixup(x) - fixup(y);
  }
  return a.length - b.length;
}

function fixup(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/**
 * The smallest string greater than every string that starts with `prefix`: the prefix with its
 * last code point incremented (dropping trailing U+10FFFF). null when there is none (no upper
 * bound needed). Lets every backend turn "starts with" into an index range.
 */
export function prefixUpperBound(prefix: string): string | null {
  const points = Array.from(prefix);
  while (points.length) {
    const last = points.pop()!.codePointAt(0)!;
    if (last === 0x10ffff) continue;
    // Skip the surrogate block: it is not a code point of a well-formed string.
    const next = last === 0xd7ff ? 0xe000 : last + 1;
    return points.join('') + String.fromCodePoint(next);
  }
  return null;
}

/** Keys the host works with are well-formed: a lone surrogate becomes U+FFFD, as it does when
 *  workerd converts a JS string to UTF-8. Without this, two different JS strings could store as
 *  the same bytes in one backend and as different keys in another. */
export function normalizeKey(key: string): string {
  return (key as string & { toWellFormed(): string }).toWellFormed();
}

// A cursor is the last key of the page it ends, opaque to callers (base64url of its UTF-8).
export function encodeCursor(lastKey: string): string {
  return Buffer.from(lastKey, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string | null {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  return encodeCursor(key) === cursor ? key : null;
}
