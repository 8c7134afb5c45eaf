// The route table: GET /routes (all of it), GET|PUT /workers/:name/routes (one worker's patterns).
import { Hono } from 'hono';
import type { Deployments } from '../deployments.js';
import { badRequest } from '../errors.js';
import { jsonObjectBody } from '../json-body.js';
import { scopeOf } from '../principal.js';

export function routesRoutes(deployments: Deployments): Hono {
  const app = new Hono();

  app.get('/routes', async (c) => c.json({ routes: await deployments.listRoutes(scopeOf(c)) }));

  app.get('/workers/:name/routes', async (c) => {
    const { routes } = await deployments.getWorker(c.req.param('name'), scopeOf(c));
    return c.json({ name: c.req.param('name'), routes });
  });

  // Body: {"routes": ["example.com/api/*", ...]}; replaces the worker's routes (an empty list clears them).
  app.put('/workers/:name/routes', async (c) => {
    const body = await jsonObjectBody(c, 'the body must be JSON such as {"routes": ["example.com/api/*"]}');
    const routes = await deployments.setRoutes(c.req.param('name'), body.routes, scopeOf(c));
    return c.json({ name: c.req.param('name'), routes });
  });

  return app;
}
