// An itty-router app, unchanged: AutoRouter with params, queries, JSON bodies, CORS, thrown
// status errors and the response helpers. Run it with:
//
//   npx cinder dev examples/itty-router.ts
//   curl localhost:8787/hello/world
//   curl -X POST localhost:8787/todos -H 'content-type: application/json' -d '{"title":"write tests"}'
import { AutoRouter, StatusError, cors, error, html, json, text, withContent, type IRequest } from 'itty-router';

const { preflight, corsify } = cors({ origin: ['https://example.com'], allowMethods: ['GET', 'POST', 'DELETE'], maxAge: 600 });

interface Todo {
  id: number;
  title: string;
  done: boolean;
}

// itty-router 6's corsify rebuilds the response as `new Response(body, { ...response, headers })`;
// a spread copies no status (it is a getter on Response.prototype, in workerd as in browsers), so
// every corsified response would say 200. Keep the original status.
const withCors = (response: Response, request: IRequest): Response => {
  const corsified = corsify(response, request);
  if (corsified.status === response.status) return corsified;
  return new Response(corsified.body, { status: response.status, statusText: response.statusText, headers: corsified.headers });
};

const router = AutoRouter({
  before: [preflight],
  finally: [withCors],
  // Called with the (missing) response first, then the request.
  missing: (_response: unknown, request: IRequest) => error(404, { error: 'not found', path: new URL(request.url).pathname }),
});

router
  .get('/', () => text('itty-router on Cinder\n'))
  .get('/hello/:name', ({ name }: IRequest) => `Hello, ${name}!`)
  .get('/numbers', () => [1, 2, 3])
  .get('/search', ({ query }: IRequest) => ({ query }))
  .get('/todos/:id', ({ params }: IRequest) => {
    const id = Number(params.id);
    if (!Number.isInteger(id)) throw new StatusError(400, 'id must be an integer');
    if (id > 100) return error(404, `no todo ${id}`);
    return { id, title: `todo ${id}`, done: id % 2 === 0 } satisfies Todo;
  })
  .post('/todos', withContent, ({ content }: IRequest) => {
    if (!content || typeof content.title !== 'string') throw new StatusError(422, 'title is required');
    return json({ id: 101, title: content.title, done: false } satisfies Todo, { status: 201 });
  })
  .get('/page', () => html('<!doctype html><title>itty</title><p>Hello from itty-router</p>'))
  .get('/redirect', () => Response.redirect('https://example.com/elsewhere', 302))
  .get('/boom', () => {
    throw new Error('unexpected');
  });

export default router;
