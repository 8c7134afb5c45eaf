// /workers/:name/assets-upload-session: static asset uploads (control/assets.ts describes the
// three steps). The account whose blobs they are is the worker's, or for a new worker the caller's.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Deployments } from '../deployments.js';
import { ControlError, badRequest, tooLarge } from '../errors.js';
import { scopeOf } from '../principal.js';
import { DEFAULT_ACCOUNT } from '../../store/types.js';
import type { AssetUploads } from '../assets.js';

/** A manifest of the most files allowed fits well within this (path, hash and size per file). */
const MANIFEST_BODY_MAX = 16 * 1024 * 1024;

export function assetsRoutes(deployments: Deployments): Hono {
  const app = new Hono();
  const uploads = (): AssetUploads => {
    if (!deployments.assetUploads) throw new ControlError(404, 'this server keeps no static assets');
    return deployments.assetUploads;
  };
  // The operator acts for the worker's own account; a scoped token for its account (scope.ts let
  // it through only for its own worker or a name nobody holds).
  const accountFor = async (name: string, scope: string | undefined) => (await deployments.ownerOf(name)) ?? scope ?? DEFAULT_ACCOUNT;

  app.post(
    '/:name/assets-upload-session',
    bodyLimit({
      maxSize: MANIFEST_BODY_MAX,
      onError: () => {
        throw tooLarge(`the manifest is larger than ${MANIFEST_BODY_MAX} bytes`);
      },
    }),
    async (c) => {
      const name = c.req.param('name');
      let body: unknown;
      try {
        body = await c.req.json();
      } catch (error) {
        throw badRequest(`the body is not valid JSON: ${(error as Error).message}`);
      }
      const opened = uploads().open(name, await accountFor(name, scopeOf(c)), body);
      return c.json({ session: opened.session, missing: opened.missing, expires_at: new Date(opened.expiresAt).toISOString() }, 201);
    },
  );

  app.put('/:name/assets-upload-session/:session/:hash', async (c) => {
    const name = c.req.param('name');
    const store = uploads();
    const length = c.req.header('content-length');
    const declared = length === undefined ? null : Number(length);
    if (declared !== null && !(Number.isSafeInteger(declared) && declared >= 0)) throw badRequest('invalid Content-Length');
    if (declared !== null && declared > store.maxFileBytes) {
      c.header('Connection', 'close');
      throw tooLarge(`the file is ${declared} bytes, over the limit of ${store.maxFileBytes} bytes (25 MiB) per asset`, { limit: store.maxFileBytes });
    }
    const body = c.req.raw.body;
    const chunks = (body ?? (async function* () {})()) as AsyncIterable<Uint8Array>;
    const result = await store.putBlob(c.req.param('session'), name, await accountFor(name, scopeOf(c)), c.req.param('hash'), declared, chunks);
    return c.json({ stored: c.req.param('hash'), missing: result.missing }, 201);
  });

  return app;
}
