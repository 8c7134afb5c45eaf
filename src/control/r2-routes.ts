// Admin API for R2, mounted by the control plane at /r2 (behind its bearer auth):
//
//   GET    /r2/:bucket/objects?prefix=&delimiter=&cursor=&limit=  -> R2's list answer as JSON
//   GET    /r2/:bucket/objects/:key   -> the object's bytes, its HTTP metadata as headers, ETag
//   PUT    /r2/:bucket/objects/:key   body: the bytes (streamed to disk); Content-Type kept
//   DELETE /r2/:bucket/objects/:key
//
// Keys may contain "/" (the key is the rest of the path). A bucket name is the calling account's
// own (an account token naming another tenant's bucket reaches an empty bucket of its own); the
// operator acts on the default account, or on another with ?account=ID. Everything goes through
// the store the workers use.
import { Hono, type Context } from 'hono';
import { Readable } from 'node:stream';
import { bucketNameError, R2Error, type BucketRef, type R2Store } from '../../bindings/r2/index.js';
import { actingAccount, scopeOf } from './principal.js';

function ref(c: Context): BucketRef {
  const bucket = c.req.param('bucket') ?? '';
  const error = bucketNameError(bucket);
  if (error) throw new R2Error('bucket', `invalid bucket name "${bucket.slice(0, 64)}": ${error}`, 10005);
  const asked = c.req.query('account');
  return { account: asked && scopeOf(c) === undefined ? asked : actingAccount(c), bucket };
}

function keyOf(c: Context): string {
  const prefix = `/${encodeURIComponent(c.req.param('bucket') ?? '')}/objects/`;
  const path = new URL(c.req.url).pathname;
  const at = path.indexOf(prefix);
  return decodeURIComponent(path.slice(at + prefix.length));
}

function guarded(handler: (c: Context) => Promise<Response> | Response) {
  return async (c: Context) => {
    try {
      return await handler(c);
    } catch (error) {
      if (error instanceof R2Error) return c.json({ error: error.message }, 400);
      throw error;
    }
  };
}

export function r2Routes(store: R2Store): Hono {
  const app = new Hono();

  app.get(
    '/:bucket/objects',
    guarded((c) => {
      const limit = c.req.query('limit');
      return c.json(store.list(ref(c), { prefix: c.req.query('prefix'), delimiter: c.req.query('delimiter'), cursor: c.req.query('cursor'), limit: limit ? Number(limit) : undefined, include: ['httpMetadata', 'customMetadata'] }));
    }),
  );

  app.get(
    '/:bucket/objects/*',
    guarded((c) => {
      const found = store.get(ref(c), keyOf(c));
      if (!found?.body) return c.json({ error: 'no such object' }, 404);
      const { object } = found;
      const headers = new Headers({ etag: `"${object.etag}"`, 'content-length': String(object.size), 'last-modified': new Date(object.uploaded).toUTCString() });
      if (object.httpMetadata.contentType) headers.set('content-type', object.httpMetadata.contentType);
      return new Response(Readable.toWeb(Readable.from(found.body)) as ReadableStream, { headers });
    }),
  );

  app.put(
    '/:bucket/objects/*',
    guarded(async (c) => {
      const body = c.req.raw.body;
      const source = body ? (Readable.fromWeb(body as never) as AsyncIterable<Uint8Array>) : new Uint8Array(0);
      const contentType = c.req.header('content-type');
      const object = await store.put(ref(c), keyOf(c), source, contentType ? { httpMetadata: { contentType } } : {});
      return c.json(object, 201);
    }),
  );

  app.delete(
    '/:bucket/objects/*',
    guarded((c) => {
      store.delete(ref(c), [keyOf(c)]);
      return c.json({ deleted: true });
    }),
  );

  return app;
}
