// A Hono app, unchanged: routing with params and queries, middleware (our own, CORS, basic auth,
// ETag, secure headers), JSON in and out, error handling, and streamed responses through Hono's
// stream() and streamSSE() helpers. Run it with:
//
//   npx cinder dev examples/hono-app.ts
//   curl localhost:8787/api/users/42?field=name&field=email
//   curl -X POST localhost:8787/api/echo -H 'content-type: application/json' -d '{"hi":1}'
//   curl -N localhost:8787/stream
import { Hono } from 'hono';
import { basicAuth } from 'hono/basic-auth';
import { cors } from 'hono/cors';
import { etag } from 'hono/etag';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import { stream, streamSSE } from 'hono/streaming';

type AppEnv = { Variables: { requestId: string } };

const app = new Hono<AppEnv>();

// Our own middleware: a request id (the client's, or a fresh one) set for the handlers and echoed.
app.use('*', async (c, next) => {
  c.set('requestId', c.req.header('x-request-id') ?? crypto.randomUUID());
  await next();
  c.header('x-request-id', c.get('requestId'));
  c.header('x-powered-by', 'Hono on Cinder');
});

app.use('/api/*', cors({ origin: ['https://example.com'], allowMethods: ['GET', 'POST'], exposeHeaders: ['x-request-id'], maxAge: 600 }));
app.use('/admin/*', basicAuth({ username: 'admin', password: 'hunter2' }));

app.get('/', (c) => c.text('Hono on Cinder\n'));

app.get('/api/users/:id', (c) =>
  c.json({
    id: c.req.param('id'),
    fields: c.req.queries('field') ?? [],
    verbose: c.req.query('verbose') === '1',
    requestId: c.get('requestId'),
  }),
);

app.post('/api/echo', async (c) => {
  const body = await c.req.json();
  return c.json({ received: body, contentType: c.req.header('content-type') ?? null }, 201);
});

app.post('/api/form', async (c) => {
  const form = await c.req.parseBody({ all: true });
  return c.json(form);
});

// ETag computes a SHA-1 of the body with crypto.subtle and answers If-None-Match with a 304.
app.get('/etag', etag(), (c) => c.text('the same content every time\n'));

app.get('/secure', secureHeaders(), (c) => c.html('<h1>secure</h1>'));

app.get('/admin/stats', (c) => c.json({ ok: true, user: 'admin' }));

app.get('/stream', (c) =>
  stream(c, async (s) => {
    c.header('content-type', 'text/plain; charset=utf-8');
    for (let i = 1; i <= 5; i++) {
      await s.write(`chunk ${i}\n`);
      await s.sleep(20);
    }
  }),
);

app.get('/sse', (c) =>
  streamSSE(c, async (s) => {
    for (let i = 1; i <= 3; i++) {
      await s.writeSSE({ event: 'tick', id: String(i), data: JSON.stringify({ i }) });
    }
  }),
);

app.get('/teapot', () => {
  throw new HTTPException(418, { message: "I'm a teapot" });
});

app.get('/error', () => {
  throw new Error('something broke');
});

app.notFound((c) => c.json({ error: 'not found', path: c.req.path }, 404));

app.onError((error, c) => {
  if (error instanceof HTTPException) return error.getResponse();
  return c.json({ error: error.message }, 500);
});

export default app;
