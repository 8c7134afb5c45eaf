// /workers: upload, list, inspect, delete.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Deployments } from '../deployments.js';
import { tooLarge } from '../errors.js';
import { scopeOf } from '../principal.js';
import { readUpload } from '../upload.js';
import { versionView, workerSummary, workerView } from '../views.js';

// Room for the multipart framing and the metadata part around the modules themselves; the exact
// size check is on the modules, after parsing.
const UPLOAD_OVERHEAD = 1024 * 1024;

export function workersRoutes(deployments: Deployments): Hono {
  const app = new Hono();

  app.get('/', async (c) => c.json({ workers: (await deployments.listWorkers(scopeOf(c))).map(workerSummary) }));

  app.put(
    '/:name',
    bodyLimit({
      maxSize: deployments.maxScriptBytes + UPLOAD_OVERHEAD,
      onError: () => {
        // Refuse before reading the rest of an oversized body.
        throw tooLarge(`the upload is larger than the script limit of ${deployments.maxScriptBytes} bytes`, { limit: deployments.maxScriptBytes });
      },
    }),
    async (c) => {
      const name = c.req.param('name');
      const spec = await readUpload(c.req.raw);
      const version = await deployments.upload(name, spec, scopeOf(c));
      const { routes } = await deployments.getWorker(name, scopeOf(c));
      // {version: "<id>", number, hash, size, ...}: the new version, and the worker's routes now.
      const { id, ...view } = versionView(version);
      return c.json({ name, version: id, ...view, routes }, 201);
    },
  );

  app.get('/:name', async (c) => c.json(workerView(await deployments.getWorker(c.req.param('name'), scopeOf(c)))));

  app.delete('/:name', async (c) => {
    const name = c.req.param('name');
    await deployments.remove(name, scopeOf(c));
    return c.json({ deleted: name });
  });

  return app;
}
