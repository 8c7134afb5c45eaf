// The admin API: a hono app assembled from small route modules, behind bearer auth. Served on its
// own port by `cinder serve` (see node-adapter.ts), apart from the data plane.
//
// Other parts of Cinder add their endpoints (KV under /kv, usage, tail, metrics) as more route
// modules through `modules`; they are mounted behind the same auth and error handling.
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import type { Deployments } from './deployments.js';
import { adminAuth } from './auth.js';
import { tenantScope } from './scope.js';
import { accountsRoutes } from './routes/accounts.js';
import { ControlError } from './errors.js';
import { workersRoutes } from './routes/workers.js';
import { versionsRoutes } from './routes/versions.js';
import { routesRoutes } from './routes/routes.js';
import { secretsRoutes } from './routes/secrets.js';

export interface AdminRouteModule {
  /** where the module's routes are mounted, e.g. "/kv" ("/" for paths it spells out itself) */
  path: string;
  app: Hono;
}

export interface AdminAppOptions {
  deployments: Deployments;
  token: string;
  logger: Logger;
  modules?: AdminRouteModule[];
}

export function createAdminApp(options: AdminAppOptions): Hono {
  const { deployments, logger } = options;
  const app = new Hono();

  // One line per admin request: method, path, status, time. Never headers or bodies: they carry
  // the token and worker secrets.
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    logger.info({ admin: true, method: c.req.method, path: c.req.path, status: c.res.status, ms: Number((performance.now() - started).toFixed(2)) }, 'admin request');
  });

  // Unauthenticated, and says nothing but "up": for load balancers and supervisors.
  app.get('/healthz', (c) => c.json({ ok: true }));

  // Who calls (operator or an account's token), then what that caller may reach (scope.ts).
  app.use('*', adminAuth({ operatorToken: options.token, findToken: (hash) => deployments.store.findToken(hash) }));
  app.use('*', tenantScope(deployments));
  app.route('/', accountsRoutes(deployments.store));
  app.route('/workers', workersRoutes(deployments));
  app.route('/workers', versionsRoutes(deployments));
  app.route('/workers', secretsRoutes(deployments));
  app.route('/', routesRoutes(deployments));
  for (const module of options.modules ?? []) app.route(module.path, module.app);

  app.notFound((c) => c.json({ error: `no such endpoint: ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => {
    if (error instanceof ControlError) {
      if (error.status === 413) c.header('Connection', 'close');
      return c.json({ error: error.message, ...error.details }, error.status);
    }
    if (error instanceof HTTPException) return error.getResponse();
    logger.error({ admin: true, method: c.req.method, path: c.req.path, err: error.stack ?? String(error) }, 'admin request failed');
    return c.json({ error: 'internal error; see the server log' }, 500);
  });
  return app;
}
