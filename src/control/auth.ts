// Bearer-token auth for the admin API. Two kinds of token:
//   - the operator's admin token (CINDER_ADMIN_TOKEN / <data>/admin-token): everything;
//   - scoped tokens made by the operator for one account (tokens.ts): only that account's things.
// The operator token is compared in constant time: both sides are hashed to 32 bytes first, so
// timingSafeEqual sees equal lengths and neither the token's content nor its length leaks through
// timing. A scoped token is looked up by its SHA-256 (the store keeps nothing else): the lookup
// can only reveal a prefix of a hash, which says nothing about a token. No token is ever logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { TokenInfo } from '../model/accounts.js';
import { setPrincipal } from './principal.js';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** The hex SHA-256 under which a scoped token is stored. */
export const tokenHash = (token: string) => digest(token).toString('hex');

export interface AdminAuthOptions {
  operatorToken: string;
  /** a scoped token by its hash (the deployment store); omitted: the operator token only */
  findToken?(hash: string): Promise<TokenInfo | null>;
}

export function adminAuth(options: AdminAuthOptions): MiddlewareHandler {
  if (!options.operatorToken) throw new Error('the admin API needs a non-empty token');
  const expected = digest(options.operatorToken);
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!match) {
      c.header('WWW-Authenticate', 'Bearer realm="cinder admin"');
      return c.json({ error: 'authentication required: send "Authorization: Bearer <token>" with the admin token (CINDER_ADMIN_TOKEN) or an account token' }, 401);
    }
    const presented = digest(match[1]);
    if (timingSafeEqual(presented, expected)) {
      setPrincipal(c, { kind: 'operator' });
      return next();
    }
    const scoped = options.findToken ? await options.findToken(presented.toString('hex')) : null;
    if (!scoped) return c.json({ error: 'the bearer token is not valid for this server' }, 403);
    setPrincipal(c, { kind: 'account', account: scoped.account, token: scoped.id });
    return next();
  };
}

