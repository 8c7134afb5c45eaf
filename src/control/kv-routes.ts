// Admin API for KV, mounted by the control plane at /kv (behind its bearer auth):
//
//   GET    /kv/:namespace/keys?prefix=&limit=&cursor=   -> {keys: [{name, expiration?, metadata?}], list_complete, cursor?}
//   GET    /kv/:namespace/values/:key                   -> the raw value; CF-KV-Metadata / CF-Expiration headers
//   PUT    /kv/:namespace/values/:key?expiration=&expiration_ttl=
//            body: the raw value, metadata in a CF-KV-Metadata header (JSON);
//            or multipart/form-data with `value` and `metadata` parts, as Cloudflare's KV API takes
//   DELETE /kv/:namespace/values/:key
//
// Keys may contain "/" (the key is the rest of the path) and are percent-decoded. Everything
// goes through the same KVService the workers use, so limits and errors are the same; reads skip
// the cache so an operator sees what storage holds now.
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { KVError, type KVService } from '../../bindings/kv/index.js';
import { KV_LIMITS } from '../../bindings/kv/protocol.js';
import { accountNamespace } from '../model/accounts.js';
import { actingAccount } from './principal.js';

// Multipart framing and the metadata part around a maximal value.
const BODY_OVERHEAD = 64 * 1024;

function failure(c: Context, error: unknown): Response {
  if (error instanceof KVError) return c.json({ error: error.detail }, error.status as 400);
  if (error instanceof TypeError) return c.json({ error: error.message }, 400);
  throw error;
}

/** Run a handler, answering KV validation errors as JSON with the KV API's status. */
function guarded(handler: (c: Context) => Promise<Response>) {
  return async (c: Context) => {
    try {
      return await handler(c);
    } catch (error) {
      return failure(c, error);
    }
  };
}

/**
 * A path parameter the route pattern guarantees (hono types a bare Context's as optional). A
 * namespace id is the caller's account's own name for it (model/accounts.ts): an account token
 * naming another tenant's namespace id reaches an empty namespace of its own.
 */
function param(c: Context, name: 'namespace' | 'key'): string {
  const value = c.req.param(name) ?? '';
  return name === 'namespace' ? accountNamespace(actingAccount(c), value) : value;
}

async function readPut(c: Context): Promise<{ value: Uint8Array | string; metadata?: string }> {
  const type = c.req.header('content-type') ?? '';
  if (type.startsWith('multipart/form-data')) {
    const form = await c.req.raw.formData();
    const value = form.get('value');
    if (value === null) throw new KVError('PUT', 400, 'multipart upload needs a "value" part');
    const metadata = form.get('metadata');
    return {
      value: typeof value === 'string' ? value : new Uint8Array(await value.arrayBuffer()),
      metadata: metadata === null ? undefined : typeof metadata === 'string' ? metadata : await metadata.text(),
    };
  }
  return { value: new Uint8Array(await c.req.arrayBuffer()), metadata: c.req.header('cf-kv-metadata') || undefined };
}

export function kvRoutes(kv: KVService): Hono {
  const app = new Hono();
  const valuePath = '/:namespace/values/:key{.+}';

  app.get(
    '/:namespace/keys',
    guarded(async (c) => {
      const result = await kv.list(param(c, 'namespace'), {
        prefix: c.req.query('prefix'),
        limit: c.req.query('limit'),
        cursor: c.req.query('cursor'),
      });
      const keys = result.keys.map((key) => (key.metadata === undefined ? key : { ...key, metadata: JSON.parse(key.metadata) }));
      return c.json({ ...result, keys });
    }),
  );

  app.get(
    valuePath,
    guarded(async (c) => {
      const key = param(c, 'key');
      const read = await kv.get(param(c, 'namespace'), key, { fresh: true });
      if (!read) return c.json({ error: `key not found: ${key}` }, 404);
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (read.metadata !== null) headers['cf-kv-metadata'] = read.metadata;
      if (read.expiration !== null) headers['cf-expiration'] = String(read.expiration);
      return c.body(new Uint8Array(read.value), 200, headers);
    }),
  );

  app.put(
    valuePath,
    bodyLimit({
      maxSize: KV_LIMITS.maxValueBytes + BODY_OVERHEAD,
      onError: (c) => c.json({ error: `Value length exceeds limit of ${KV_LIMITS.maxValueBytes}.` }, 413),
    }),
    guarded(async (c) => {
      const { value, metadata } = await readPut(c);
      await kv.put(param(c, 'namespace'), param(c, 'key'), value, {
        expiration: c.req.query('expiration'),
        expirationTtl: c.req.query('expiration_ttl'),
        metadata,
      });
      return c.json({ ok: true });
    }),
  );

  app.delete(
    valuePath,
    guarded(async (c) => {
      await kv.delete(param(c, 'namespace'), param(c, 'key'));
      return c.json({ ok: true });
    }),
  );

  return app;
}
