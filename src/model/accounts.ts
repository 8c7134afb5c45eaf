// Accounts: who owns a worker, its routes and its KV namespaces. Plain data and rules shared by
// the store, the control plane and the bindings.

/**
 * The account of everything made before accounts existed, and of what the operator token makes
 * without naming an account: single-tenant use goes on unchanged.
 */
export const DEFAULT_ACCOUNT = 'default';

export interface AccountInfo {
  /** 32 hex characters (the shape of a Cloudflare account id, which wrangler sends), or "default" */
  id: string;
  /** unique, as given to `cinder accounts create NAME` */
  name: string;
  createdAt: number;
}

/** A scoped token as stored: its secret is never kept, only a SHA-256 of it. */
export interface TokenInfo {
  /** public handle, shown in listings and used to revoke ("tok_" + 16 hex) */
  id: string;
  account: string;
  /** hex SHA-256 of the token */
  hash: string;
  label: string | null;
  createdAt: number;
}

/** An account name as typed: a DNS-label-like slug, so it can appear in URLs and logs unquoted. */
export function accountNameError(name: unknown): string | null {
  if (typeof name === 'string' && /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) return null;
  return 'an account name is 1-63 lowercase letters, digits and dashes, not starting or ending with a dash';
}

/**
 * Where an account's KV namespace `id` lives in storage. Namespace ids are the account's own
 * names: two accounts naming "abc" get two namespaces, so naming another tenant's id reaches
 * nothing of theirs, and says nothing about whether it exists. The default account keeps the ids
 * as they are (data written before accounts existed stays where it is); the operator can address
 * any account's namespace by this storage id.
 */
export function accountNamespace(account: string, id: string): string {
  return account === DEFAULT_ACCOUNT ? id : `acct:${account}:${id}`;
}
