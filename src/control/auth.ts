// Bearer-token auth for the admin API. The token is compared in constant time: both sides are
// hashed to 32 bytes first, so timingSafeEqual sees equal lengths and neither the token's content
// nor its length leaks through timing. Neither the expected nor the presented token is ever logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

export function bearerAuth(token: string): MiddlewareHandler {
  if (!token) throw new Error('the admin API needs a non-empty token');
  const expected = digest(token);
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!match) {
      c.header('WWW-Authenticate', 'Bearer realm="cinder admin"');
      return c.json({ error: 'authentication required: send "Authorization: Bearer <token>" with the admin token (CINDER_ADMIN_TOKEN)' }, 401);
    }
    if (!timingSafeEqual(digest(match[1]), expected)) {
      return c.json({ error: 'the bearer token is not valid for this server' }, 403);
    }
    await next();
  };
}
