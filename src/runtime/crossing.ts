// A guest's response as the host is about to use it: status, reason phrase and headers go
// straight into node:http, which throws on what HTTP cannot carry (and would send a status of
// 600 as is). The guest controls every field (a Response's getters can be redefined, a Proxy can
// answer anything), so each is checked here, at the crossing, and a bad one becomes an exception
// of that invocation, never a throw on the thread that serves everyone.
import { MAX_RESPONSE_HEADER_BYTES, type WireResponse } from '../../protocol/wall.js';

/** Reason phrases longer than this are refused: HTTP clients cap a response head at a few KB. */
export const MAX_STATUS_TEXT_LENGTH = 1024;

// RFC 9110: a field name is a token; a field value and a reason phrase are HTAB, SP, VCHAR and
// obs-text (what node:http accepts: no CR, LF, NUL or other controls, nothing above U+00FF).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const INVALID_TEXT = /[^\t\x20-\x7e\x80-\xff]/;

const describe = (value: unknown): string => {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return String(value);
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
};

/** responseProblem's answer for headers over MAX_RESPONSE_HEADER_BYTES: a TypeError of the
 *  invocation as workerd throws it (guest-wire.ts oversizedHeaders), not a refused response. */
export const OVERSIZED_HEADERS = Symbol('oversized headers');

/** What is wrong with a guest's response, in words for the worker's author, or null if nothing.
 *  The headers are walked once, for their shape and their total size. */
export function responseProblem(response: WireResponse): string | typeof OVERSIZED_HEADERS | null {
  const { status, statusText, headers, body } = response;
  if (response.webSocket !== undefined) {
    if (status !== 101 || !Number.isSafeInteger(response.webSocket) || response.webSocket <= 0) return 'invalid webSocket (a WebSocket response must have status 101)';
    if (body !== null && body !== undefined) return 'a 101 response cannot have a body';
  } else if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    return `invalid status ${describe(status)} (a Response status must be an integer from 200 to 599)`;
  }
  if (statusText !== undefined && typeof statusText !== 'string') return `invalid statusText ${describe(statusText)} (must be a string)`;
  if (statusText && statusText.length > MAX_STATUS_TEXT_LENGTH) return `invalid statusText: longer than ${MAX_STATUS_TEXT_LENGTH} characters`;
  if (statusText && INVALID_TEXT.test(statusText)) return `invalid statusText ${describe(statusText)} (no CR, LF, controls or characters above U+00FF)`;
  if (!Array.isArray(headers)) return `invalid headers ${describe(headers)} (must be name/value pairs)`;
  let headerBytes = 0;
  for (const pair of headers) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      return `invalid header ${describe(pair)} (must be a [name, value] pair of strings)`;
    }
    if (!TOKEN.test(pair[0])) return `invalid header name ${describe(pair[0])}`;
    if (INVALID_TEXT.test(pair[1])) return `invalid value ${describe(pair[1])} for header "${pair[0]}" (no CR, LF or controls)`;
    headerBytes += pair[0].length + pair[1].length;
  }
  if (body !== null && body !== undefined && typeof body !== 'string' && !(body instanceof ArrayBuffer)) return `invalid body ${describe(body)}`;
  if (response.stream !== undefined && !Number.isInteger(response.stream)) return 'invalid body stream';
  if (response.hostStream !== undefined && !Number.isInteger(response.hostStream)) return 'invalid body stream';
  if (headerBytes > MAX_RESPONSE_HEADER_BYTES) return OVERSIZED_HEADERS;
  return null;
}
