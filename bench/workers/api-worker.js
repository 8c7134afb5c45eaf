// A real-shaped API worker for the cold-start bench (issue 23's "102 KB API worker"): Hono with
// cors, etag and secureHeaders, 40 routes over five resources, request bodies validated with zod,
// a bearer token verified with jose. Its top level builds the app and the schemas, as such apps
// do at every cold start. Bundled and minified by bench/lib/build-workers.mjs.
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { etag } from 'hono/etag';
import { secureHeaders } from 'hono/secure-headers';
import { z } from 'zod';
import { jwtVerify, SignJWT } from 'jose';

const secret = new TextEncoder().encode('bench-secret-bench-secret-bench-secret');

const Id = z.coerce.number().int().positive();
const Paging = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20), cursor: z.string().optional() });
const User = z.object({ name: z.string().min(1).max(100), email: z.string().email(), role: z.enum(['admin', 'member', 'guest']).default('member') });
const Project = z.object({ title: z.string().min(1), ownerId: z.number().int(), tags: z.array(z.string()).max(10).default([]) });
const Task = z.object({ title: z.string().min(1), done: z.boolean().default(false), due: z.string().datetime().optional(), projectId: z.number().int() });
const Comment = z.object({ body: z.string().min(1).max(5000), taskId: z.number().int() });
const Webhook = z.object({ url: z.string().url(), events: z.array(z.enum(['created', 'updated', 'deleted'])).min(1), secret: z.string().min(16) });

const schemas = { users: User, projects: Project, tasks: Task, comments: Comment, webhooks: Webhook };

function fake(resource, id) {
  return { id, resource, createdAt: '2026-01-01T00:00:00.000Z', name: `${resource} ${id}` };
}

async function auth(c, next) {
  const header = c.req.header('authorization') ?? '';
  if (!header.startsWith('Bearer ')) return c.json({ error: 'missing token' }, 401);
  try {
    const { payload } = await jwtVerify(header.slice(7), secret);
    c.set('user', payload.sub);
  } catch {
    return c.json({ error: 'bad token' }, 401);
  }
  await next();
}

const app = new Hono();
app.use('*', secureHeaders());
app.use('*', cors({ origin: ['https://app.example.com'], allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] }));
app.use('*', etag());

app.get('/', (c) => c.json({ service: 'bench api', resources: Object.keys(schemas) }));
app.get('/health', (c) => c.text('ok'));
app.post('/token', async (c) => {
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('bench').setExpirationTime('1h').sign(secret);
  return c.json({ token });
});

// Eight routes per resource: list, get, create, replace, update, delete, count, search.
for (const [resource, schema] of Object.entries(schemas)) {
  const api = new Hono();
  api.get('/', (c) => {
    const paging = Paging.safeParse(c.req.query());
    if (!paging.success) return c.json({ error: paging.error.issues }, 400);
    return c.json({ items: Array.from({ length: Math.min(paging.data.limit, 5) }, (_, i) => fake(resource, i + 1)), cursor: null });
  });
  api.get('/count', (c) => c.json({ resource, count: 42 }));
  api.get('/search', (c) => c.json({ resource, q: c.req.query('q') ?? '', items: [] }));
  api.get('/:id', (c) => {
    const id = Id.safeParse(c.req.param('id'));
    if (!id.success) return c.json({ error: 'bad id' }, 400);
    return c.json(fake(resource, id.data));
  });
  const write = (status) => async (c) => {
    const body = schema.safeParse(await c.req.json().catch(() => null));
    if (!body.success) return c.json({ error: body.error.issues }, 422);
    return c.json({ id: 1, ...body.data, by: c.get('user') }, status);
  };
  api.post('/', auth, write(201));
  api.put('/:id', auth, write(200));
  api.patch('/:id', auth, async (c) => c.json({ id: Number(c.req.param('id')), patched: Object.keys((await c.req.json().catch(() => ({}))) ?? {}) }));
  api.delete('/:id', auth, (c) => c.body(null, 204));
  app.route(`/api/${resource}`, api);
}

app.notFound((c) => c.json({ error: 'not found' }, 404));
app.onError((err, c) => c.json({ error: err.message }, 500));

export default app;
