// What a scoped (account) token may reach, checked once for every admin route, including the
// ones extensions mount (usage, tail, log level, schedules, KV): a route module added later is
// operator-only until it is listed here, rather than open to every tenant by default.
//
//   /workers, /routes            listings: the route modules filter them to the account
//   /workers/:name[/...]         only the account's own workers: another account's worker is a
//                                404, word for word what a missing one gets (nothing leaks);
//                                uploading under a name another account owns is a 409
//   /kv/:namespace/...           the account's own namespaces (kv-routes.ts scopes the ids)
//   /d1, /d1/:id/...             the account's own D1 databases (d1-routes.ts scopes the ids)
//   /r2/:bucket/...              the account's own R2 buckets (r2-routes.ts scopes the names)
//   /client/v4/accounts/:id/...  only the token's own account id (wrangler sends it)
// Everything else (/accounts, /tokens, /metrics, ...) is the operator's: 403.
import type { MiddlewareHandler } from 'hono';
import type { Deployments } from './deployments.js';
import { principalOf } from './principal.js';

const LISTINGS = /^\/(workers|routes)\/?$/;
const WORKER = /^\/workers\/([^/]+)(\/.*)?$/;
const KV = /^\/kv\/.+$/;
const D1 = /^\/d1(\/.*)?$/;
const R2 = /^\/r2\/.+$/;
const ACCOUNT_API = /^\/client\/v4\/accounts\/([^/]+)(\/.*)?$/;

/** As hono decodes a path parameter, so the name checked here is the name the route acts on. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export function tenantScope(deployments: Deployments): MiddlewareHandler {
  return async (c, next) => {
    const principal = principalOf(c);
    if (principal.kind === 'operator') return next();
    const path = c.req.path;
    if (LISTINGS.test(path) || KV.test(path) || D1.test(path) || R2.test(path)) return next();

    const worker = WORKER.exec(path);
    if (worker) {
      const name = decodeSegment(worker[1]);
      const owner = await deployments.ownerOf(name);
      // An upload reads its body first and answers 409 itself (deployments.ts): refusing here,
      // mid-body, would break the client's connection instead of telling it why. Everything else
      // on a worker that is not the account's gets one answer, whether it exists elsewhere or not
      // (and usage kept under the name of a deleted worker of another account stays unseen).
      // Assets for a new worker are uploaded before the worker exists: a name nobody holds is free.
      const create = (c.req.method === 'PUT' && !worker[2]) || (owner === null && (worker[2] ?? '').startsWith('/assets-upload-session'));
      if (owner !== principal.account && !create) {
        return c.json({ error: `no worker named "${name}"` }, 404);
      }
      return next();
    }

    const account = ACCOUNT_API.exec(path);
    if (account) {
      if (decodeSegment(account[1]) !== principal.account) return c.json({ error: `this token acts on account ${principal.account} only` }, 403);
      return next();
    }
    return c.json({ error: `${c.req.method} ${path} needs the operator's admin token; an account token manages its own workers, routes, KV namespaces, D1 databases and R2 buckets` }, 403);
  };
}
