// /workers/:name/secrets: a worker's secrets, in the body shapes of Cloudflare's
// /accounts/:id/workers/scripts/:name/secrets:
//
//   PUT    /workers/:name/secrets           {"name": "API_KEY", "text": "...", "type": "secret_text"}
//                                          -> {"name": "API_KEY", "type": "secret_text", "version": {...}}
//   GET    /workers/:name/secrets           {"secrets": [{"name": "API_KEY", "type": "secret_text"}]}
//   GET    /workers/:name/secrets/:secret   {"name": "API_KEY", "type": "secret_text"}
//   DELETE /workers/:name/secrets/:secret   {"deleted": "API_KEY", "version": {...}}
//
// Setting or deleting one makes a new version live (as on Cloudflare). A value is never answered
// back, and never put in an error message or a log line.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Deployments } from '../deployments.js';
import { badRequest, notFound, tooLarge } from '../errors.js';
import { jsonObjectBody } from '../json-body.js';
import { scopeOf } from '../principal.js';
import { bindingNameError } from '../validate.js';
import { versionSummary } from '../views.js';

/** Cloudflare's limit on one secret (an environment variable) is 5 KB. */
export const MAX_SECRET_BYTES = 5 * 1024;

export function secretsRoutes(deployments: Deployments): Hono {
  const app = new Hono();

  app.put(
    '/:name/secrets',
    bodyLimit({
      maxSize: MAX_SECRET_BYTES * 6 + 1024, // JSON escapes of a 5 KiB value, and the other fields
      onError: () => {
        throw tooLarge(`the secret is larger than ${MAX_SECRET_BYTES} bytes`, { limit: MAX_SECRET_BYTES });
      },
    }),
    async (c) => {
      const { name, text, type } = await jsonObjectBody(c, 'the body must be a JSON object such as {"name": "API_KEY", "text": "<value>", "type": "secret_text"}');
      if (typeof name !== 'string' || !name) throw badRequest('"name" must be the secret\'s name, a non-empty string');
      const nameError = bindingNameError(name);
      if (nameError) throw badRequest(nameError);
      if (type !== undefined && type !== 'secret_text') throw badRequest(`"type" must be "secret_text" (got ${JSON.stringify(typeof type === 'string' ? type.slice(0, 40) : typeof type)})`);
      if (typeof text !== 'string') throw badRequest(`"text" must be the secret's value as a string (secret ${name})`);
      if (Buffer.byteLength(text) > MAX_SECRET_BYTES) throw tooLarge(`secret ${name} is ${Buffer.byteLength(text)} bytes, over the limit of ${MAX_SECRET_BYTES} bytes`, { limit: MAX_SECRET_BYTES });
      const version = await deployments.putSecret(c.req.param('name'), { name, text }, scopeOf(c));
      return c.json({ name, type: 'secret_text', version: versionSummary(version) });
    },
  );

  app.get('/:name/secrets', async (c) => c.json({ secrets: await deployments.listSecrets(c.req.param('name'), scopeOf(c)) }));

  app.get('/:name/secrets/:secret', async (c) => {
    const secret = c.req.param('secret');
    const found = (await deployments.listSecrets(c.req.param('name'), scopeOf(c))).find((s) => s.name === secret);
    if (!found) throw notFound(`worker "${c.req.param('name')}" has no secret named "${secret}"`);
    return c.json(found);
  });

  app.delete('/:name/secrets/:secret', async (c) => {
    const secret = c.req.param('secret');
    const version = await deployments.deleteSecret(c.req.param('name'), secret, scopeOf(c));
    return c.json({ deleted: secret, version: versionSummary(version) });
  });

  return app;
}
