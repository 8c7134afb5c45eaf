// Which worker a request goes to. Route patterns (`example.com/api/*`, `*.example.com/*`) are
// tried most specific first; otherwise a Host of `<name>.<anything>` names the worker; otherwise
// the default worker (if the server has one, as `cinder dev` and `npm start` do).
//
// Hosts and patterns are compared in one normalised form (model/route-pattern.ts): a port, a
// trailing dot, upper case or a Unicode spelling of a host never routes around a pattern.
//
// Tenants: a worker name belongs to one account, and so do the hosts `<name>.<anything>`. A route
// with a wildcard host (`*.example.com/*`, the operator's `*/*`) does not answer such a host for
// a worker of another account: it would take that tenant's traffic (and cookies) by a wildcard.
// A route that spells the host out may answer it: the store refused it at claim time if the name
// was already another account's (store/sqlite.ts), so it was claimed first.
import { normalizeHost, parsePattern } from '../model/route-pattern.js';

export interface Route {
  pattern: string;
  worker: string;
  /** the account the worker belongs to; undefined: one tenant (`cinder dev`), no account rules */
  account?: string;
}

interface CompiledRoute extends Route {
  host: RegExp;
  path: RegExp;
  wildcardHost: boolean;
  /** longer literal text wins; a leading host wildcard or trailing path wildcard loses ties */
  specificity: number;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 'i');
}

export function compileRoute(route: Route): CompiledRoute {
  // Patterns stored before normalisation existed (a port, a trailing dot) compile as they match.
  const parts = parsePattern(route.pattern).parts ?? { host: route.pattern, path: '/*' };
  const { host, path } = parts;
  const literal = (host + path).replace(/\*/g, '').length;
  return {
    ...route,
    host: globToRegExp(host),
    path: globToRegExp(path),
    wildcardHost: host.includes('*'),
    specificity: literal * 4 - (host.startsWith('*') ? 2 : 0) - (path.endsWith('*') ? 1 : 0),
  };
}

export class Router {
  private routes: CompiledRoute[] = [];
  private readonly workerExists: (name: string) => boolean;
  private readonly accountOf: (name: string) => string | undefined;
  defaultWorker: string | null = null;

  /** `accountOf`: the account of a deployed worker (cinder serve); without it, one tenant. */
  constructor(workerExists: (name: string) => boolean, accountOf: (name: string) => string | undefined = () => undefined) {
    this.workerExists = workerExists;
    this.accountOf = accountOf;
  }

  setRoutes(routes: Route[]): void {
    this.routes = routes.map(compileRoute).sort((a, b) => b.specificity - a.specificity);
  }

  listRoutes(): Route[] {
    return this.routes.map(({ pattern, worker }) => ({ pattern, worker }));
  }

  /** The worker for a request, or null when nothing matches. `host` may carry a port. */
  resolve(host: string | undefined, path: string): string | null {
    const hostname = normalizeHost(host ?? '') ?? '';
    const dot = hostname.indexOf('.');
    const named = dot > 0 && this.workerExists(hostname.slice(0, dot)) ? hostname.slice(0, dot) : null;
    const namedAccount = named ? this.accountOf(named) : undefined;
    for (const route of this.routes) {
      if (!route.host.test(hostname) || !route.path.test(path)) continue;
      if (route.wildcardHost && namedAccount !== undefined && route.account !== undefined && route.account !== namedAccount) continue;
      return route.worker;
    }
    if (named) return named;
    return this.defaultWorker && this.workerExists(this.defaultWorker) ? this.defaultWorker : null;
  }
}
