// Which worker a request goes to. Route patterns (`example.com/api/*`, `*.example.com/*`) are
// tried most specific first; otherwise a Host of `<name>.<anything>` names the worker; otherwise
// the default worker (if the server has one, as `cinder dev` and `npm start` do).

export interface Route {
  pattern: string;
  worker: string;
}

interface CompiledRoute extends Route {
  host: RegExp;
  path: RegExp;
  /** longer literal text wins; a leading host wildcard or trailing path wildcard loses ties */
  specificity: number;
}

const ROUTE_SHAPE = /^(\*\.)?[a-z0-9*.-]+(:\d+)?(\/.*)?$/i;

function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 'i');
}

export function validateRoutePattern(pattern: string): string | null {
  const trimmed = pattern.replace(/^https?:\/\//, '');
  if (!trimmed || !ROUTE_SHAPE.test(trimmed)) return `invalid route pattern "${pattern}" (expected host/path, e.g. example.com/api/*)`;
  return null;
}

export function compileRoute(route: Route): CompiledRoute {
  const trimmed = route.pattern.replace(/^https?:\/\//, '');
  const slash = trimmed.indexOf('/');
  const host = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const path = slash === -1 ? '/*' : trimmed.slice(slash);
  const literal = (host + path).replace(/\*/g, '').length;
  return {
    ...route,
    host: globToRegExp(host.replace(/:\d+$/, '')),
    path: globToRegExp(path),
    specificity: literal * 4 - (host.startsWith('*') ? 2 : 0) - (path.endsWith('*') ? 1 : 0),
  };
}

export class Router {
  private routes: CompiledRoute[] = [];
  private readonly workerExists: (name: string) => boolean;
  defaultWorker: string | null = null;

  constructor(workerExists: (name: string) => boolean) {
    this.workerExists = workerExists;
  }

  setRoutes(routes: Route[]): void {
    this.routes = routes.map(compileRoute).sort((a, b) => b.specificity - a.specificity);
  }

  listRoutes(): Route[] {
    return this.routes.map(({ pattern, worker }) => ({ pattern, worker }));
  }

  /** The worker for a request, or null when nothing matches. `host` may carry a port. */
  resolve(host: string | undefined, path: string): string | null {
    const hostname = (host ?? '').replace(/:\d+$/, '').toLowerCase();
    for (const route of this.routes) {
      if (route.host.test(hostname) && route.path.test(path)) return route.worker;
    }
    const dot = hostname.indexOf('.');
    if (dot > 0) {
      const name = hostname.slice(0, dot);
      if (this.workerExists(name)) return name;
    }
    return this.defaultWorker && this.workerExists(this.defaultWorker) ? this.defaultWorker : null;
  }
}
