// multipart/form-data: the HTML Standard's encoding algorithm (a FormData used as a body) and
// Fetch's parser (Body.formData()). Both work on whole byte arrays: bodies here are in memory.
import { blobBytes, File } from './blob.js';
import { utf8DecodeWithoutBOM, utf8Encode } from './encoding.js';
import type { FormDataEntry } from './form-data.js';

const CRLF = '\r\n';

/** A fresh boundary. Not a secret, only unlikely to occur in the parts (the odds of a 24-char
 *  random run appearing by chance are negligible), so Math.random is enough. */
export function makeBoundary(): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  let out = '----CinderFormBoundary';
  for (let i = 0; i < 24; i++) out += alphabet[Math.floor(Math.random() * 36)];
  return out;
}

/** HTML: names and filenames escape LF, CR and '"' (browsers' percent style). */
function escapeQuoted(s: string): string {
  return s.replace(/[\n\r"]/g, (c) => (c === '\n' ? '%0A' : c === '\r' ? '%0D' : '%22'));
}

/** HTML: lone CR or LF in names and string values become CRLF before encoding. */
function normalizeNewlines(s: string): string {
  return s.replace(/\r\n|\r|\n/g, CRLF);
}

/** Encode entries as a multipart/form-data body with the given boundary. */
export function encodeMultipart(entries: readonly FormDataEntry[], boundary: string): Uint8Array {
  const pieces: Uint8Array[] = [];
  let text = '';
  const flushText = () => {
    if (text) pieces.push(utf8Encode(text));
    text = '';
  };
  for (const [name, value] of entries) {
    text += `--${boundary}${CRLF}Content-Disposition: form-data; name="${escapeQuoted(normalizeNewlines(name))}"`;
    if (typeof value === 'string') {
      text += `${CRLF}${CRLF}${normalizeNewlines(value)}${CRLF}`;
    } else {
      text += `; filename="${escapeQuoted(value.name)}"${CRLF}Content-Type: ${value.type || 'application/octet-stream'}${CRLF}${CRLF}`;
      flushText();
      pieces.push(blobBytes(value));
      text = CRLF;
    }
  }
  text += `--${boundary}--${CRLF}`;
  flushText();
  let total = 0;
  for (const piece of pieces) total += piece.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}

const PARSE_ERROR = 'Failed to parse body as FormData: malformed multipart/form-data.';

/** Parse a multipart/form-data body (Fetch §6.5.3, with the leniency browsers and workerd show:
 *  a preamble before the first boundary and a missing CRLF after the last one are accepted). */
export function decodeMultipart(body: Uint8Array, boundary: string): FormDataEntry[] {
  const delimiter = utf8Encode(`--${boundary}`);
  const nextDelimiter = utf8Encode(`\r\n--${boundary}`);
  const entries: FormDataEntry[] = [];
  let position = indexOfBytes(body, delimiter, 0);
  if (position < 0) throw new TypeError(PARSE_ERROR);
  position += delimiter.length;
  for (;;) {
    // After a delimiter: "--" closes the body; otherwise a CRLF and a part follow.
    if (body[position] === 0x2d && body[position + 1] === 0x2d) return entries;
    if (body[position] !== 0x0d || body[position + 1] !== 0x0a) throw new TypeError(PARSE_ERROR);
    position += 2;
    const headersEnd = indexOfBytes(body, utf8Encode('\r\n\r\n'), position);
    // A part with no headers at all starts straight with the blank line.
    const noHeaders = body[position] === 0x0d && body[position + 1] === 0x0a;
    if (headersEnd < 0 && !noHeaders) throw new TypeError(PARSE_ERROR);
    const headerText = noHeaders ? '' : utf8DecodeWithoutBOM(body.subarray(position, headersEnd));
    const { name, filename, contentType } = parsePartHeaders(headerText);
    position = noHeaders ? position + 2 : headersEnd + 4;
    const end = indexOfBytes(body, nextDelimiter, position);
    if (end < 0) throw new TypeError(PARSE_ERROR);
    const content = body.subarray(position, end);
    if (filename === null) {
      entries.push([name, utf8DecodeWithoutBOM(content)]);
    } else {
      entries.push([name, new File([content], filename, { type: contentType ?? 'text/plain' })]);
    }
    position = end + nextDelimiter.length;
  }
}

function parsePartHeaders(text: string): { name: string; filename: string | null; contentType: string | null } {
  let name: string | null = null;
  let filename: string | null = null;
  let contentType: string | null = null;
  for (const line of text.split(CRLF)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new TypeError(PARSE_ERROR);
    const header = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (header === 'content-disposition') {
      const params = dispositionParams(value);
      if (!params) throw new TypeError(PARSE_ERROR);
      name = params.get('name') ?? null;
      filename = params.get('filename') ?? null;
    } else if (header === 'content-type') {
      contentType = value;
    }
  }
  if (name === null) throw new TypeError(PARSE_ERROR);
  return { name, filename, contentType };
}

/** `form-data; name="a"; filename="b"` -> {name, filename}; null unless it is form-data. */
function dispositionParams(value: string): Map<string, string> | null {
  const match = /^form-data\s*(;|$)/i.exec(value);
  if (!match) return null;
  const params = new Map<string, string>();
  const re = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(value))) {
    const key = m[1].toLowerCase();
    const raw = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3].trim();
    // Fetch: undo the percent escapes the HTML encoder applies to LF, CR and '"'.
    if (!params.has(key)) params.set(key, raw.replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%22/g, '"'));
  }
  return params;
}

/** First index of `needle` in `haystack` at or after `from`; -1 if absent. */
function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  const last = haystack.length - needle.length;
  for (let i = haystack.indexOf(first, from); i >= 0 && i <= last; i = haystack.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}
