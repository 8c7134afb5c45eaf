// Reading an admin API request's JSON body: an object, or a 400 whose message shows the caller
// what to send. One helper for every route that takes a small JSON body.
import type { Context } from 'hono';
import { badRequest } from './errors.js';

/**
 * The body as a JSON object. An empty body is `{}` when `emptyAllowed` (optional bodies), else
 * refused like any body that is not a JSON object, with `refusal` as the message.
 */
export async function jsonObjectBody(c: Context, refusal: string, { emptyAllowed = false } = {}): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (!text.trim() && emptyAllowed) return {};
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === 'object' && body !== null && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch {
    // refused below
  }
  throw badRequest(refusal);
}
