// Making accounts and scoped tokens. A token is 32 random bytes (base64url) behind a "cin_"
// prefix so it is recognisable in a leaked log or commit; it is returned once and only its
// SHA-256 is stored (auth.ts looks it up by that), so a copy of the data directory holds no
// usable token. The token id ("tok_...") is what listings show and what revoking takes.
import { randomBytes } from 'node:crypto';
import type { AccountInfo, TokenInfo } from '../model/accounts.js';
import { tokenHash } from './auth.js';

export function newAccount(name: string, now = Date.now()): AccountInfo {
  return { id: randomBytes(16).toString('hex'), name, createdAt: now };
}

export function newToken(account: string, label: string | null, now = Date.now()): { token: string; info: TokenInfo } {
  const token = `cin_${randomBytes(32).toString('base64url')}`;
  return { token, info: { id: `tok_${randomBytes(8).toString('hex')}`, account, hash: tokenHash(token), label, createdAt: now } };
}
