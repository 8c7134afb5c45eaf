// Routing on the data plane as configured through the admin API: route patterns (most specific
// first) before `<name>.<anything>` hosts, 404 when nothing matches, 409 when a pattern is taken.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, startCinder, textWorker, type TestCinder } from './helpers.js';

let cinder: TestCinder;

async function deploy(name: string, routes?: string[]) {
  const metadata = routes ? { main_module: 'index.js', routes } : { main_module: 'index.js' };
  const res = await cinder.admin('PUT', `/workers/${name}`, { body: multipart(metadata, { 'index.js': textWorker(name) }) });
  expect(res.status, res.text).toBe(201);
  return res;
}

beforeAll(async () => {
  cinder = await startCinder();
  await deploy('site', ['example.com/*']);
  await deploy('api', ['example.com/api/*']);
  await deploy('apiv2', ['example.com/api/v2/*']);
  await deploy('wild', ['*.example.com/*']);
  await deploy('shop', ['https://Shop.Example.com/cart*']);
  await deploy('plain');
});
afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('precedence', () => {
  const cases: [host: string, path: string, worker: string][] = [
    ['example.com', '/', 'site'],
    ['example.com', '/about', 'site'],
    ['example.com', '/api/users', 'api'],
    ['example.com', '/api/v2/users', 'apiv2'],
    ['example.com:8443', '/api/x', 'api'],
    ['EXAMPLE.COM', '/api/x', 'api'],
    ['shop.example.com', '/cart/items', 'shop'],
    ['shop.example.com', '/other', 'wild'],
    ['blog.example.com', '/', 'wild'],
    // a route pattern beats the worker named by the host's first label
    ['plain.example.com', '/', 'wild'],
    // no route: the first label names the worker
    ['plain.localhost', '/', 'plain'],
    ['api.test', '/anything', 'api'],
  ];
  for (const [host, path, worker] of cases) {
    it(`${host}${path} -> ${worker}`, async () => {
      const res = await cinder.get(host, path);
      expect(res.status).toBe(200);
      expect(res.text).toBe(worker);
    });
  }

  it('is 404 with a body saying no worker matched', async () => {
    const res = await cinder.get('nothing.invalid', '/x');
    expect(res.status).toBe(404);
    expect(res.text).toMatch(/No worker matched this request \(host "nothing\.invalid", path "\/x"\)/);
  });

  it('lists the route table', async () => {
    const res = await cinder.admin('GET', '/routes');
    expect(res.body.routes).toEqual(
      expect.arrayContaining([
        { pattern: 'example.com/*', worker: 'site' },
        { pattern: 'example.com/api/*', worker: 'api' },
        { pattern: 'example.com/api/v2/*', worker: 'apiv2' },
        { pattern: '*.example.com/*', worker: 'wild' },
        // stored without the scheme, host lowercased
        { pattern: 'shop.example.com/cart*', worker: 'shop' },
      ]),
    );
    expect((await cinder.admin('GET', '/workers/api/routes')).body).toEqual({ name: 'api', routes: ['example.com/api/*'] });
  });
});

describe('conflicts', () => {
  it('is 409 when an upload claims a route another worker owns, and changes nothing', async () => {
    const res = await cinder.admin('PUT', '/workers/plain', { body: multipart({ main_module: 'index.js', routes: ['plain-site.org/*', 'example.com/api/*'] }, { 'index.js': textWorker('plain v2') }) });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ pattern: 'example.com/api/*', owner: 'api' });
    expect(res.body.error).toMatch(/route "example\.com\/api\/\*" is already owned by worker "api"/);
    expect((await cinder.admin('GET', '/workers/plain/versions')).body.versions).toHaveLength(1);
    expect((await cinder.get('plain.localhost')).text).toBe('plain');
    expect((await cinder.get('plain-site.org')).status).toBe(404);
    expect((await cinder.get('example.com', '/api/x')).text).toBe('api');
  });

  it('treats a pattern with a scheme or another case as the same pattern', async () => {
    const res = await cinder.admin('PUT', '/workers/plain/routes', { json: { routes: ['http://EXAMPLE.com/api/*'] } });
    expect(res.status).toBe(409);
  });

  it('is 409 when PUT /workers/:name/routes claims a taken pattern', async () => {
    const res = await cinder.admin('PUT', '/workers/plain/routes', { json: { routes: ['*.example.com/*'] } });
    expect(res.status).toBe(409);
    expect(res.body.owner).toBe('wild');
  });

  it('lets a worker re-upload with its own routes', async () => {
    const res = await deploy('api', ['example.com/api/*', 'api.example.net/*']);
    expect(res.body.routes.sort()).toEqual(['api.example.net/*', 'example.com/api/*']);
    expect((await cinder.get('api.example.net', '/')).text).toBe('api');
  });
});

describe('changing routes', () => {
  it('keeps a worker\'s routes when an upload does not mention routes', async () => {
    await deploy('api');
    expect((await cinder.admin('GET', '/workers/api')).body.routes).toEqual(['api.example.net/*', 'example.com/api/*']);
    expect((await cinder.get('example.com', '/api/x')).text).toBe('api');
  });

  it('replaces routes with PUT /workers/:name/routes, and frees released patterns', async () => {
    const res = await cinder.admin('PUT', '/workers/api/routes', { json: { routes: ['api.example.net/*'] } });
    expect(res.status).toBe(200);
    expect(res.body.routes).toEqual(['api.example.net/*']);
    // example.com/api/* is free again: the less specific example.com/* answers
    expect((await cinder.get('example.com', '/api/x')).text).toBe('site');
    const claimed = await cinder.admin('PUT', '/workers/plain/routes', { json: { routes: ['example.com/api/*'] } });
    expect(claimed.status).toBe(200);
    expect((await cinder.get('example.com', '/api/x')).text).toBe('plain');
  });

  it('clears routes with an empty list', async () => {
    await cinder.admin('PUT', '/workers/shop/routes', { json: { routes: [] } });
    expect((await cinder.get('shop.example.com', '/cart')).text).toBe('wild');
  });

  it('refuses malformed route updates', async () => {
    expect((await cinder.admin('PUT', '/workers/shop/routes', { json: { routes: 'x.com/*' } })).status).toBe(400);
    expect((await cinder.admin('PUT', '/workers/shop/routes', { json: { routes: ['bad pattern'] } })).body.error).toMatch(/routes\[0\]: invalid route pattern/);
    expect((await cinder.admin('PUT', '/workers/shop/routes', { body: 'nope', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await cinder.admin('PUT', '/workers/ghost/routes', { json: { routes: [] } })).status).toBe(404);
  });
});
