// Who is calling the admin API: the operator (the server's admin token) or an account (a scoped
// token). Set by auth.ts on every authenticated request; read by the route modules through
// principalOf(), so each decides what the caller may see without knowing how tokens work.
import type { Context } from 'hono';
import { DEFAULT_ACCOUNT } from '../model/accounts.js';

export type Principal = { kind: 'operator' } | { kind: 'account'; account: string; token: string };

const KEY = 'cinderPrincipal';

export function setPrincipal(c: Context, principal: Principal): void {
  (c as Context<{ Variables: Record<string, unknown> }>).set(KEY, principal);
}

/** The caller; the operator when nothing was set (an app mounted without auth, in tests). */
export function principalOf(c: Context): Principal {
  return ((c as Context<{ Variables: Record<string, unknown> }>).get(KEY) as Principal | undefined) ?? { kind: 'operator' };
}

/** The account a scoped token is limited to; undefined for the operator, who sees every account. */
export function scopeOf(c: Context): string | undefined {
  const principal = principalOf(c);
  return principal.kind === 'account' ? principal.account : undefined;
}

/** The account a call acts on when it creates something: the token's, or for the operator the default one. */
export function actingAccount(c: Context): string {
  return scopeOf(c) ?? DEFAULT_ACCOUNT;
}
