// /workers/:name/versions and /workers/:name/rollback.
import { Hono } from 'hono';
import type { Deployments } from '../deployments.js';
import { badRequest } from '../errors.js';
import { jsonObjectBody } from '../json-body.js';
import { scopeOf } from '../principal.js';
import { versionSummary, versionView } from '../views.js';

export function versionsRoutes(deployments: Deployments): Hono {
  const app = new Hono();

  app.get('/:name/versions', async (c) => {
    const { info, versions } = await deployments.listVersions(c.req.param('name'), scopeOf(c));
    return c.json({ name: info.name, current: info.currentVersion, versions: versions.map((v) => versionView(v, info.currentVersion)) });
  });

  app.get('/:name/versions/:id', async (c) => {
    const { info, version } = await deployments.getVersion(c.req.param('name'), c.req.param('id'), scopeOf(c));
    return c.json(versionView(version, info.currentVersion));
  });

  // Body (optional): {"version": "<id>" | <number>}; without one, the version before the current.
  app.post('/:name/rollback', async (c) => {
    let target: string | number | undefined = c.req.query('version');
    const { version } = await jsonObjectBody(c, 'the rollback body must be JSON such as {"version": 3} or {"version": "<version id>"}, or empty for the previous version', { emptyAllowed: true });
    if (version !== undefined && typeof version !== 'string' && typeof version !== 'number') throw badRequest('"version" must be a version id or number');
    target = version ?? target;
    const result = await deployments.rollback(c.req.param('name'), target, scopeOf(c));
    return c.json({ name: c.req.param('name'), changed: result.changed, version: versionSummary(result.version), previous: versionSummary(result.previous) });
  });

  return app;
}
