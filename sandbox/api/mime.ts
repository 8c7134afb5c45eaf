// MIME types (WHATWG MIME Sniffing §4) and Fetch's "extract a MIME type" from headers. Bodies
// need them to give blob() its type and to tell formData() which parser to use.
import { HTTP_TOKEN } from './headers.js';

export interface MimeType {
  type: string;
  subtype: string;
  /** lowercase names; values as written (unquoted) */
  parameters: Map<string, string>;
}

// HTTP quoted-string token code points: tab, space..~, and U+0080..U+00FF.
const QUOTED_STRING_TOKEN = /^[\t\x20-\x7e\x80-\xff]*$/;
const HTTP_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

export function essence(mime: MimeType): string {
  return `${mime.type}/${mime.subtype}`;
}

/** "Parse a MIME type"; null on failure. */
export function parseMimeType(input: string): MimeType | null {
  const s = input.replace(HTTP_WHITESPACE, '');
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const type = s.slice(0, slash);
  if (!HTTP_TOKEN.test(type)) return null;
  let position = slash + 1;
  let semicolon = s.indexOf(';', position);
  if (semicolon < 0) semicolon = s.length;
  const subtype = s.slice(position, semicolon).replace(/[\t\n\r ]+$/, '');
  if (!HTTP_TOKEN.test(subtype)) return null;
  const mime: MimeType = { type: type.toLowerCase(), subtype: subtype.toLowerCase(), parameters: new Map() };
  position = semicolon;
  while (position < s.length) {
    position++; // the ";"
    while (position < s.length && /[\t\n\r ]/.test(s[position])) position++;
    let end = position;
    while (end < s.length && s[end] !== ';' && s[end] !== '=') end++;
    const name = s.slice(position, end).toLowerCase();
    position = end;
    if (position < s.length) {
      if (s[position] === ';') continue;
      position++; // the "="
    }
    if (position >= s.length) break;
    let value: string;
    if (s[position] === '"') {
      [value, position] = collectQuotedString(s, position);
      while (position < s.length && s[position] !== ';') position++;
    } else {
      end = s.indexOf(';', position);
      if (end < 0) end = s.length;
      value = s.slice(position, end).replace(/[\t\n\r ]+$/, '');
      position = end;
      if (value === '') continue;
    }
    if (name !== '' && HTTP_TOKEN.test(name) && QUOTED_STRING_TOKEN.test(value) && !mime.parameters.has(name)) {
      mime.parameters.set(name, value);
    }
  }
  return mime;
}

export function serializeMimeType(mime: MimeType): string {
  let out = essence(mime);
  for (const [name, value] of mime.parameters) {
    out += `;${name}=`;
    out += value !== '' && HTTP_TOKEN.test(value) ? value : `"${value.replace(/(["\\])/g, '\\$1')}"`;
  }
  return out;
}

/** Fetch "extract a MIME type" from a Content-Type header value (as Headers#get returns it:
 *  several values joined by ", "). Keeps a charset across values of the same essence. */
export function extractMimeType(contentType: string | null): MimeType | null {
  if (contentType === null) return null;
  let charset: string | null = null;
  let currentEssence: string | null = null;
  let mime: MimeType | null = null;
  for (const value of splitHeaderValue(contentType)) {
    const candidate = parseMimeType(value);
    if (!candidate || essence(candidate) === '*/*') continue;
    mime = candidate;
    if (essence(mime) !== currentEssence) {
      charset = mime.parameters.get('charset') ?? null;
      currentEssence = essence(mime);
    } else if (!mime.parameters.has('charset') && charset !== null) {
      mime.parameters.set('charset', charset);
    }
  }
  return mime;
}

/** Fetch "get, decode, and split": split on commas outside quoted strings, trim whitespace. */
function splitHeaderValue(value: string): string[] {
  const out: string[] = [];
  let position = 0;
  let current = '';
  while (position <= value.length) {
    const comma = value.slice(position).search(/[",]/);
    if (comma < 0) {
      current += value.slice(position);
      break;
    }
    current += value.slice(position, position + comma);
    position += comma;
    if (value[position] === '"') {
      const [, end] = collectQuotedString(value, position);
      current += value.slice(position, end);
      position = end;
    } else {
      out.push(current.replace(HTTP_WHITESPACE, ''));
      current = '';
      position++;
    }
  }
  out.push(current.replace(HTTP_WHITESPACE, ''));
  return out;
}

/** Fetch "collect an HTTP quoted string" with extract-value: returns [value, position after]. */
function collectQuotedString(s: string, start: number): [string, number] {
  let value = '';
  let position = start + 1;
  while (position < s.length) {
    const c = s[position];
    if (c === '"') return [value, position + 1];
    if (c === '\\') {
      position++;
      if (position >= s.length) {
        value += '\\';
        break;
      }
    }
    value += s[position];
    position++;
  }
  return [value, position];
}
