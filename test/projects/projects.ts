// The sweep: what a user of each project under test/fixtures/projects sees, the same checks for
// `cinder dev` and `cinder deploy` (where the two differ, `t.mode` says which is running).
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { eventually, type Target } from './harness.js';

export interface SweptProject {
  /** its folder under test/fixtures/projects, and its worker's name */
  name: string;
  /** projects that run alongside (dev: one `cinder dev -c a -c b`; deploy: deployed first) */
  alongside?: string[];
  /** deploy: `cinder secret put` after the first deploy (dev reads .dev.vars) */
  secrets?: Record<string, string>;
  /** refused by both commands with this message, before anything serves */
  refused?: RegExp;
  check?(t: Target): Promise<void>;
}

export const DEPLOYED_JWT_SECRET = 'deployed-signing-key-9a7f3e21c0b4-never-printed';

const json = (text: string) => JSON.parse(text);

export const PROJECTS: SweptProject[] = [
  {
    name: 'hono-api',
    async check(t) {
      const hello = await t.fetch('hono-api', '/api/hello/ada?q=1', { headers: { origin: 'https://app.example.com' } });
      expect(hello.status).toBe(200);
      expect(json(hello.text)).toEqual({ hello: 'ada', q: '1' });
      expect(hello.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(hello.headers['x-content-type-options']).toBe('nosniff');
      const etag = hello.headers.etag as string;
      expect(etag).toMatch(/^"[0-9a-f]+"$/);
      expect((await t.fetch('hono-api', '/api/hello/ada?q=1', { headers: { 'if-none-match': etag } })).status).toBe(304);
      const echo = await t.fetch('hono-api', '/api/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":[1,2]}' });
      expect([echo.status, json(echo.text)]).toEqual([201, { n: [1, 2] }]);
      expect((await t.fetch('hono-api', '/admin/panel')).status).toBe(401);
      const admin = await t.fetch('hono-api', '/admin/panel', { headers: { authorization: `Basic ${Buffer.from('admin:hunter2').toString('base64')}` } });
      expect([admin.status, admin.text]).toEqual([200, 'welcome, admin']);
      expect(await t.fetch('hono-api', '/teapot')).toMatchObject({ status: 418, text: 'short and stout' });
      expect(await t.fetch('hono-api', '/nope')).toMatchObject({ status: 404, text: '{"error":"not found","path":"/nope"}' });
      // hono/logger's lines, in the server's log
      const logs = await eventually(() => t.logs('hono-api'), (l) => l.some((x) => /^--> GET \/teapot /.test(x.msg)));
      expect(logs.map((l) => l.msg)).toContainEqual(expect.stringMatching(/^<-- GET \/api\/hello\/ada\?q=1$/));
      expect(logs.map((l) => l.msg)).toContainEqual(expect.stringMatching(/^--> GET \/teapot .*418/));
      if (t.mode === 'deploy') {
        // the logger's "cloudflare:workers" string (for an import() it cannot make) costs no snapshot
        const outcome = await eventually(() => t.logs('hono-api').map((l) => l.msg).find((m) => /deployment snapshot/.test(m)), (m) => m !== undefined, 300);
        expect(outcome).toMatch(/^deployment snapshot of hono-api version 1 ready/);
      }
    },
  },
  {
    name: 'itty-router',
    async check(t) {
      expect(json((await t.fetch('itty-router', '/todos/7?done=true')).text)).toEqual({ id: 7, done: true });
      const created = await t.fetch('itty-router', '/todos', { method: 'POST', body: '{"title":"ship it"}' });
      expect([created.status, json(created.text)]).toEqual([201, { created: 'ship it' }]);
      const failed = await t.fetch('itty-router', '/fail');
      expect([failed.status, json(failed.text)]).toEqual([400, { status: 400, error: 'bad todo' }]);
      expect((await t.fetch('itty-router', '/missing')).status).toBe(404);
    },
  },
  {
    name: 'kv-counter',
    async check(t) {
      expect((await t.fetch('kv-counter', '/pricing')).text).toBe('pricing: 1');
      expect((await t.fetch('kv-counter', '/pricing')).text).toBe('pricing: 2');
      expect((await t.fetch('kv-counter', '/')).text).toBe('home: 1');
      expect(json((await t.fetch('kv-counter', '/?list')).text)).toEqual([
        { name: 'home', metadata: { last: 'visit' } },
        { name: 'pricing', metadata: { last: 'visit' } },
      ]);
      expect((await t.fetch('kv-counter', '/pricing', { method: 'DELETE' })).status).toBe(204);
      expect((await t.fetch('kv-counter', '/pricing')).text).toBe('pricing: 1');
    },
  },
  {
    name: 'vars',
    async check(t) {
      expect(json((await t.fetch('vars', '/')).text)).toEqual({ greeting: 'hello', features: { beta: true, regions: ['eu', 'us'] }, featuresType: 'object' });
    },
  },
  {
    name: 'drizzle-d1',
    async check(t) {
      const post = (author: string, message: string) => t.fetch('drizzle-d1', '/', { method: 'POST', body: JSON.stringify({ author, message }) });
      const first = await post('ada', 'hello');
      expect([first.status, json(first.text)]).toEqual([201, { id: 1, author: 'ada', message: 'hello' }]);
      expect(json((await post('grace', "it's a bug")).text)).toEqual({ id: 2, author: 'grace', message: "it's a bug" });
      expect(json((await t.fetch('drizzle-d1', '/')).text).map((r: { id: number }) => r.id)).toEqual([2, 1]);
      expect(json((await t.fetch('drizzle-d1', '/?author=grace')).text)).toEqual([{ id: 2, author: 'grace', message: "it's a bug" }]);
    },
  },
  {
    name: 'crons',
    async check(t) {
      // dev: fired by hand, as wrangler's /__scheduled; deploy: the every-second schedule fires
      if (t.mode === 'dev') {
        const fired = await t.fetch('crons', '/__scheduled?cron=*/5+*+*+*+*&time=1700000000000');
        expect([fired.status, fired.text]).toEqual([200, 'Ran scheduled event\n']);
        expect((await t.fetch('crons', '/?cron=*/5 * * * *')).text).toBe('ran at 1700000000000');
      } else {
        const ran = await eventually(() => t.fetch('crons', '/').then((r) => r.text), (text) => text.startsWith('ran at'), 150);
        expect(ran).toMatch(/^ran at \d{13}$/);
        expect(Number(ran.slice(7)) % 1000).toBe(0);
      }
      const logs = await eventually(() => t.logs('crons'), (l) => l.some((x) => /^cron .* fired$/.test(x.msg)));
      expect(logs.map((l) => l.msg)).toContainEqual(expect.stringMatching(t.mode === 'dev' ? /^cron \*\/5 \* \* \* \* fired$/ : /^cron \* \* \* \* \* \* fired$/));
    },
  },
  {
    name: 'ts-workers-types',
    async check(t) {
      expect(json((await t.fetch('ts-workers-types', '/items')).text)).toEqual({ version: 'v2', kind: 'fresh', value: '/ITEMS' });
      const cached = await eventually(() => t.fetch('ts-workers-types', '/items').then((r) => json(r.text)), (a) => a.kind === 'cached', 50);
      expect(cached).toEqual({ version: 'v2', kind: 'cached', value: '/ITEMS' });
    },
  },
  {
    name: 'react-ssr',
    async check(t) {
      const page = await t.stream('react-ssr', '/');
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      // the shell with the fallback arrives while the comments API has not answered yet...
      const shell = await page.readUntil(/loading comments…/);
      expect(shell).toMatch(/^<!DOCTYPE html><html><head>.*<\/head><body><h1>Streaming from the edge<\/h1><!--\$\?--><template id="B:0"><\/template><p>loading comments…<\/p><!--\/\$-->/);
      // ...and the comments stream in once it has
      t.fake.release('comments', '["first!","nice post"]');
      const whole = await page.readUntil(/<\/html>$/);
      expect(whole).toMatch(/<div hidden id="S:0"><ul><li>first!<\/li><li>nice post<\/li><\/ul><\/div>/);
      expect(whole).toMatch(/<\/body><\/html>$/);
      expect(page.headers['x-react-version']).toMatch(/^19\./);
    },
  },
  {
    name: 'sse',
    async check(t) {
      const events = await t.stream('sse', '/?n=2');
      expect(events.status).toBe(200);
      expect(events.headers['content-type']).toBe('text/event-stream');
      // each event goes out as soon as the worker writes it: the next one waits on the upstream
      expect(await events.readUntil(/\n\n/)).toBe('id: 1\nevent: tick\ndata: {"i":1,"price":"open"}\n\n');
      t.fake.release('price-2', '101.5');
      expect(await events.readUntil(/"i":2.*\n\n/s)).toBe('id: 1\nevent: tick\ndata: {"i":1,"price":"open"}\n\nid: 2\nevent: tick\ndata: {"i":2,"price":"101.5"}\n\n');
      t.fake.release('price-3', '99');
      expect(await events.readUntil(/event: done\ndata: bye\n\n$/)).toMatch(/data: \{"i":3,"price":"99"\}\n\nevent: done\ndata: bye\n\n$/);
    },
  },
  {
    name: 'fetch-sdks',
    secrets: { OPENAI_API_KEY: 'sk-test-openai', STRIPE_SECRET_KEY: 'sk_test_stripe', UPSTASH_REDIS_REST_TOKEN: 'upstash-token' },
    async check(t) {
      const seen = t.fake.requests.length;
      const openai = await t.fetch('fetch-sdks', '/openai');
      expect([openai.status, openai.text]).toEqual([200, '{"reply":"hi from the fake OpenAI"}']);
      const stripe = await t.fetch('fetch-sdks', '/stripe');
      expect([stripe.status, stripe.text]).toEqual([200, '{"id":"cus_fake123","email":"ada@example.com"}']);
      const redis = await t.fetch('fetch-sdks', '/redis');
      expect([redis.status, redis.text]).toEqual([200, '{"greeting":"hello"}']);
      const mine = t.fake.requests.slice(seen);
      const completion = mine.find((r) => r.path === '/v1/chat/completions')!;
      expect(completion.headers.authorization).toBe('Bearer sk-test-openai');
      expect(JSON.parse(completion.body)).toMatchObject({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }] });
      expect(mine.find((r) => r.path === '/v1/customers')!.headers.authorization).toBe('Bearer sk_test_stripe');
      expect(mine.filter((r) => r.path.startsWith('/upstash')).map((r) => r.headers.authorization)).toContain('Bearer upstash-token');
    },
  },
  {
    name: 'nodejs-compat',
    async check(t) {
      const context = await t.fetch('nodejs-compat', '/context', { headers: { 'x-request-id': `req-${t.mode}` } });
      expect([context.status, context.text]).toEqual([200, `request req-${t.mode}`]);
      const buffer = json((await t.fetch('nodejs-compat', '/buffer')).text);
      expect(buffer).toEqual({
        token: 'dXNlcjpwYXNz',
        back: 'user:pass',
        digest: createHash('sha256').update('user:pass').digest('hex').slice(0, 16),
        heard: 'pong',
        uuid: true,
        isBuffer: true,
        nodeEnv: t.mode === 'dev' ? 'development' : 'production',
      });
      // Sentry's withSentry: the error reaches the DSN as an envelope with the exception in it
      const seen = t.fake.requests.length;
      const crash = await t.fetch('nodejs-compat', '/crash');
      expect([crash.status, crash.text]).toEqual([500, 'oops: sentry should see this']);
      const envelopes = await eventually(() => t.fake.requests.slice(seen).filter((r) => r.path.startsWith('/api/1/envelope/')), (e) => e.some((r) => r.body.includes('sentry should see this')), 150);
      const envelope = envelopes.find((r) => r.body.includes('sentry should see this'))!;
      const [header, itemHeader, item] = envelope.body.split('\n');
      expect(envelope.path).toMatch(/^\/api\/1\/envelope\/\?.*sentry_key=publickey/);
      expect(JSON.parse(header).event_id).toMatch(/^[0-9a-f]{32}$/);
      expect(JSON.parse(itemHeader).type).toBe('event');
      expect(JSON.parse(item).exception.values[0]).toMatchObject({ type: 'Error', value: 'sentry should see this' });
    },
  },
  {
    name: 'rpc-gateway',
    alongside: ['rpc-service'],
    async check(t) {
      expect(await t.fetch('rpc-gateway', '/greet')).toMatchObject({ status: 200, text: 'Hello, Ada! (region eu)' });
      expect(json((await t.fetch('rpc-gateway', '/sum')).text)).toEqual({ total: 10, atIsDate: true });
      expect(await t.fetch('rpc-gateway', '/refuse')).toMatchObject({ status: 502, text: 'RangeError: out of range in rpc-service' });
      expect((await t.fetch('rpc-service', '/')).text).toBe('rpc-service: call me over a service binding');
    },
  },
  {
    name: 'secrets',
    secrets: { JWT_SECRET: DEPLOYED_JWT_SECRET },
    async check(t) {
      const length = t.mode === 'dev' ? 'local-dev-signing-key-5c1e'.length : DEPLOYED_JWT_SECRET.length;
      expect((await t.fetch('secrets', '/')).text).toBe(`secret is set (${length} chars)`);
      const login = await t.fetch('secrets', '/login', { method: 'POST', body: '{"user":"ada"}' });
      const { token } = json(login.text);
      expect(token.split('.')).toHaveLength(3);
      expect(json((await t.fetch('secrets', '/me', { headers: { authorization: `Bearer ${token}` } })).text)).toEqual({ user: 'ada' });
      expect((await t.fetch('secrets', '/me', { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);
      expect(await t.fetch('secrets', '/login', { method: 'POST', body: '{"user":""}' })).toMatchObject({ status: 400, text: '{"error":"user"}' });
    },
  },
  {
    name: 'assets-spa',
    async check(t) {
      const shell = await t.fetch('assets-spa', '/');
      expect(shell.status).toBe(200);
      expect(shell.headers['content-type']).toMatch(/^text\/html/);
      const script = /src="(\/assets\/app-[0-9a-f]{8}\.js)"/.exec(shell.text)?.[1];
      expect(script).toBeDefined();
      const app = await t.fetch('assets-spa', script!);
      expect([app.status, app.text]).toEqual([200, "document.getElementById('root').textContent = 'client-side app';\n"]);
      expect(app.headers['content-type']).toMatch(/^(text|application)\/javascript/);
      expect((await t.fetch('assets-spa', script!, { headers: { 'if-none-match': app.headers.etag as string } })).status).toBe(304);
      // a client-side route is the SPA shell; the API is the worker's
      expect((await t.fetch('assets-spa', '/settings/profile', { headers: { 'sec-fetch-mode': 'navigate' } })).text).toBe(shell.text);
      expect(json((await t.fetch('assets-spa', '/api/whoami')).text)).toEqual({ from: 'worker', path: '/api/whoami' });
      expect((await t.fetch('assets-spa', '/api/shell-size')).text).toBe(String(shell.text.length));
      expect((await t.fetch('assets-spa', '/robots.txt')).text).toBe('User-agent: *\nAllow: /\n');
    },
  },
  {
    name: 'assets-only',
    async check(t) {
      const home = await t.fetch('assets-only', '/');
      expect([home.status, home.text]).toEqual([200, '<!doctype html><h1>Docs home</h1>\n']);
      expect(home.headers['content-type']).toMatch(/^text\/html/);
      // html_handling auto-trailing-slash: /docs/start serves docs/start.html
      expect((await t.fetch('assets-only', '/docs/start')).text).toBe('<!doctype html><h1>Getting started</h1>\n');
      const css = await t.fetch('assets-only', '/site.css', { headers: { range: 'bytes=0-3' } });
      expect([css.status, css.text, css.headers['content-type']]).toEqual([206, 'body', 'text/css; charset=utf-8']);
      expect(await t.fetch('assets-only', '/no/such/page')).toMatchObject({ status: 404, text: '<!doctype html><h1>Nothing here</h1>\n' });
    },
  },
  {
    name: 'workers-sites',
    refused: /site: Workers Sites .* not supported by Cinder: serve the directory with \[assets\] instead/,
  },
  {
    name: 'module-rules',
    async check(t) {
      const page = await t.fetch('module-rules', '/page');
      expect(page.text).toBe('<!doctype html><title>rules</title><p>Hello from an imported .html file</p>\n');
      expect(json((await t.fetch('module-rules', '/text')).text)).toEqual({
        notice: 'plain text, imported\n',
        schema: 'CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n',
        query: 'query Me { me { id } }\n',
        kinds: ['string', 'string', true],
      });
      expect((await t.fetch('module-rules', '/add')).text).toBe('42');
    },
  },
  {
    name: 'build-command',
    async check(t) {
      expect(await t.fetch('build-command', '/pricing')).toMatchObject({ status: 200, text: 'pricing (routes built by gen.mjs)' });
      expect((await t.fetch('build-command', '/nope')).status).toBe(404);
    },
  },
  {
    name: 'cache-api',
    async check(t) {
      const first = await t.fetch('cache-api', '/expensive');
      expect([first.text, first.headers['x-cache']]).toEqual(['expensive answer #1 for /expensive', 'MISS']);
      // the put rides on waitUntil: ask until it has landed
      const hit = await eventually(() => t.fetch('cache-api', '/expensive'), (r) => r.headers['x-cache'] === 'HIT', 50);
      expect([hit.text, hit.headers['x-cache'], hit.headers['cache-control']]).toEqual(['expensive answer #1 for /expensive', 'HIT', 'public, max-age=600']);
      expect((await t.fetch('cache-api', '/purge')).text).toBe('purged: true');
      const rebuilt = await t.fetch('cache-api', '/expensive');
      expect(rebuilt.headers['x-cache']).toBe('MISS');
      expect(rebuilt.text).toMatch(/^expensive answer #\d+ for \/expensive$/);
    },
  },
  {
    name: 'html-rewriter',
    async check(t) {
      const page = await t.fetch('html-rewriter', '/');
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.text).toBe(`<!doctype html><html><head><title>Shop</title></head><body>
<a href="https://shop.example.com/cart">Cart</a>
<h1 class="hero">Welcome back, Ada</h1>

<p id="price">$10</p><p id="sale">now $8</p>
</body></html><!-- titles: Shop -->`);
    },
  },
  {
    name: 'request-cf',
    async check(t) {
      const cf = json((await t.fetch('request-cf', '/', { headers: { 'cf-connecting-ip': '203.0.113.9' } })).text);
      expect(cf).toMatchObject({ hasCf: true, colo: t.mode === 'dev' ? expect.any(String) : 'SWEEP', httpProtocol: 'HTTP/1.1' });
      // no proxy is trusted: the client's own header is not believed
      expect(cf.connectingIp).toBe('127.0.0.1');
      // one host cannot read a socket's TCP_INFO from Node.js: absent, as docs/compat.md says
      expect(cf.clientTcpRtt).toBeNull();
    },
  },
  {
    name: 'wasm-bytes',
    async check(t) {
      const refused = await t.fetch('wasm-bytes', '/');
      expect(refused.status).toBe(500);
      expect(refused.text).toMatch(/^CompileError: WebAssembly\.instantiate\(\): Wasm code generation disallowed by embedder/);
      expect(await t.fetch('wasm-bytes', '/module')).toMatchObject({ status: 200, text: 'from the module: 5' });
    },
  },
  {
    name: 'passthrough',
    async check(t) {
      expect(await t.fetch('passthrough', '/fine')).toMatchObject({ status: 200, text: 'worker answered /fine' });
      const broken = await t.fetch('passthrough', '/broken/page?x=1');
      const posted = t.mode === 'deploy' ? await t.fetch('passthrough', '/broken/form', { method: 'POST', body: 'name=ada' }) : undefined;
      if (t.mode === 'deploy') {
        // `cinder serve --origin`: the origin answers as if the worker were not there
        expect([broken.status, broken.text, broken.headers['x-served-by']]).toEqual([200, 'origin answered GET /broken/page?x=1', 'origin']);
        // a request body goes on whole, read by the worker before it threw or not
        expect([posted!.status, posted!.text]).toEqual([200, 'origin answered POST /broken/form']);
        expect(t.fake.requests.find((r) => r.path === '/broken/form')?.body).toBe('name=ada');
        const read = await t.fetch('passthrough', '/broken/after-read', { method: 'POST', body: 'name=grace&plan=pro' });
        expect([read.status, read.text]).toEqual([200, 'origin answered POST /broken/after-read']);
        expect(t.fake.requests.find((r) => r.path === '/broken/after-read')?.body).toBe('name=grace&plan=pro');
      } else {
        // no origin configured: a clear 500, not a hang or a silent pass
        expect(broken.status).toBe(500);
        expect(broken.text).toMatch(/passThroughOnException/);
      }
    },
  },
  {
    name: 'config-typos',
    // both typos named at once, each with its suggestion
    refused: /wrangler\.toml: var is not a wrangler key Cinder knows \(did you mean "vars"\?\); see docs\/compat\.md[^\n]*\n[^\n]*wrangler\.toml: kv_namespace is not a wrangler key Cinder knows \(did you mean "kv_namespaces"\?\)/,
  },
];
