// The core runtime over real HTTP: a real server on a free port, real sockets, real isolates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { startTestServer, type TestServer } from '../helpers/server.js';

const workers = {
  hello: `export default { fetch() { return new Response('Hello, world!') } }`,
  // Checksumming 1 MB in JS is real CPU work; this test is about the echo, not the CPU limit.
  echo: { limits: { cpuMs: 2000 }, code: `export default {
    async fetch(request) {
      const url = new URL(request.url);
      const body = new Uint8Array(await request.arrayBuffer());
      let sum = 0; for (const b of body) sum = (sum + b) % 65521;
      return Response.json({
        method: request.method, path: url.pathname, query: Object.fromEntries(url.searchParams),
        headers: Object.fromEntries(request.headers), length: body.length, sum,
      });
    }
  }` },
  json: `export default { async fetch(request) { const data = await request.json(); return Response.json({ got: data, doubled: data.n * 2 }, { status: 201 }) } }`,
  timer: `export default { async fetch() { const t = Date.now(); await new Promise(r => setTimeout(r, 50)); return new Response('waited ' + (Date.now() - t >= 45)) } }`,
  thrower: `let n = 0; export default { fetch(request) { if (new URL(request.url).pathname === '/throw') throw new Error('kaboom ' + (++n)); if (new URL(request.url).pathname === '/reject') return Promise.reject(new TypeError('rejected')); return new Response('fine') } }`,
  spin: { code: `export default { fetch() { while (true) {} } }` },
  slow: `export default { async fetch() { await new Promise(r => setTimeout(r, 300)); return new Response('slow ok') } }`,
  membomb: { code: `export default { fetch() { const keep = []; let i = 0; while (true) keep.push('x'.repeat(1 << 20) + (i++)) } }`, limits: { cpuMs: 20_000, memoryMb: 32 } },
  syntax: `export default { fetch() { return new Response('x' } }`,
  topthrow: `const config = JSON.parse('{"a":1}');\nthrow new Error('missing API_KEY at startup');\nexport default { fetch() { return new Response('never') } }`,
  waituntil: `let done = []; export default {
    fetch(request, env, ctx) {
      const url = new URL(request.url);
      if (url.pathname === '/status') return Response.json(done);
      ctx.waitUntil(new Promise(r => setTimeout(r, 100)).then(() => done.push(url.searchParams.get('id'))));
      return new Response('accepted');
    }
  }`,
  sw: `addEventListener('fetch', (event) => { event.respondWith(new Response('service worker says hi ' + event.request.method)) })`,
  cookies: `export default { fetch() {
    const h = new Headers(); h.append('set-cookie', 'a=1; Path=/'); h.append('set-cookie', 'b=2; HttpOnly'); h.set('x-custom', 'yes');
    return new Response('cookies', { headers: h });
  } }`,
  status: `export default { fetch() { return new Response(null, { status: 204, headers: { 'x-empty': '1' } }) } }`,
  binary: `export default { fetch() { const b = new Uint8Array(256); for (let i = 0; i < 256; i++) b[i] = i; return new Response(b, { headers: { 'content-type': 'application/octet-stream' } }) } }`,
  // Installing a worker reads its env (JSON from the host) and finds its handlers after its top
  // level ran: a top level that sabotages the builtins that could use must not change either.
  sabotage: {
    code: `JSON.parse = () => ({ sabotaged: true });
      JSON.stringify = () => '"sabotaged"';
      Array.prototype.filter = () => ['sabotaged'];
      Object.keys = () => [];
      Object.entries = () => [];
      String.prototype.concat = () => 'sabotaged';
      export default { fetch(request, env) { return new Response(env.GREETING + ' ' + env.CONFIG.list.length + ' ' + env.CONFIG.nested.ok) } }`,
    bindings: { GREETING: { type: 'plain_text', text: 'hi "there"' }, CONFIG: { type: 'json', json: { list: [1, 2, 3], nested: { ok: true } } } },
  },
  // As on workerd: code generation from strings while the worker starts, not in its handlers.
  codegen: `const atStartup = eval('6 * 7'); const double = new Function('a', 'return a * 2');
    export default { fetch() {
      let inHandler; try { inHandler = eval('1 + 1'); } catch (e) { inHandler = e.name + ': ' + e.message; }
      let fn; try { fn = new Function('return 1'); } catch (e) { fn = e.name; }
      return new Response([atStartup, double(21), inHandler, fn].join(' | '));
    } }`,
  logger: `export default { fetch() { console.log('hello from the guest', { a: 1 }); console.error('bad thing'); return new Response('logged') } }`,
};

describe('core runtime over HTTP', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(workers, { maxRequestBodyBytes: 4 * 1024 * 1024 });
  });
  afterAll(() => server.close());

  it('serves hello', async () => {
    const res = await server.request('hello');
    expect(res.status).toBe(200);
    expect(res.text).toBe('Hello, world!');
    expect(res.headers['content-length']).toBe('13');
  });

  it('gives the worker its env even when its top level replaced JSON, Object.keys/entries and array builtins', async () => {
    const res = await server.request('sabotage');
    expect(res.status).toBe(200);
    expect(res.text).toBe('hi "there" 3 true');
  });

  it('allows eval and new Function while the worker starts and refuses them in its handlers', async () => {
    const res = await server.request('codegen');
    expect(res.status).toBe(200);
    expect(res.text).toBe('42 | 42 | EvalError: Code generation from strings disallowed for this context | EvalError');
  });

  it('echoes method, path, query, headers and a 1 MB body', async () => {
    const body = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    let sum = 0;
    for (const b of body) sum = (sum + b) % 65521;
    const res = await server.request('echo', '/some/path?x=1&y=two', { method: 'PUT', headers: { 'x-test': 'abc', 'content-type': 'application/octet-stream' }, body });
    expect(res.status).toBe(200);
    const json = JSON.parse(res.text);
    expect(json.method).toBe('PUT');
    expect(json.path).toBe('/some/path');
    expect(json.query).toEqual({ x: '1', y: 'two' });
    expect(json.headers['x-test']).toBe('abc');
    expect(json.headers.host).toBe('echo.test');
    expect(json.length).toBe(body.length);
    expect(json.sum).toBe(sum);
  });

  it('round-trips JSON', async () => {
    const res = await server.request('json', '/', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: 21, s: 'héllo ✓' }) });
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(res.text)).toEqual({ got: { n: 21, s: 'héllo ✓' }, doubled: 42 });
  });

  it('awaits a timer inside the handler', async () => {
    const res = await server.request('timer');
    expect(res.text).toBe('waited true');
  });

  it('answers 200 concurrent requests to one worker', async () => {
    const agent = new Agent({ connections: 50 });
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const res = await request(`${server.url}/?i=${i}`, { headers: { host: 'echo.test' }, dispatcher: agent });
        return { status: res.statusCode, body: JSON.parse(await res.body.text()) };
      }),
    );
    await agent.close();
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(new Set(results.map((r) => r.body.query.i)).size).toBe(200);
  });

  it('turns a throwing handler into a 500 with the stack in the log, then serves the next request', async () => {
    const res = await server.request('thrower', '/throw');
    expect(res.status).toBe(500);
    expect(res.text).toContain('kaboom 1');
    const line = server.logs.find((l) => l.worker === 'thrower' && l.status === 500);
    expect(String(line?.err)).toMatch(/Error: kaboom 1\n\s+at/);
    const rejected = await server.request('thrower', '/reject');
    expect(rejected.status).toBe(500);
    expect(rejected.text).toContain('TypeError: rejected');
    const next = await server.request('thrower', '/');
    expect(next.status).toBe(200);
    expect(next.text).toBe('fine');
  });

  it('ends an infinite loop with 503 for CPU while another worker keeps answering', async () => {
    const spinning = server.request('spin');
    const during: number[] = [];
    for (let i = 0; i < 3; i++) during.push((await server.request('hello')).status);
    const res = await spinning;
    expect(res.status).toBe(503);
    expect(res.text).toContain('exceeded CPU time limit');
    expect(during).toEqual([200, 200, 200]);
    const line = server.logs.find((l) => l.worker === 'spin' && l.status === 503);
    expect(line?.limit).toBe('cpu');
    // The isolate was recycled: the next request gets a fresh one (and the same verdict).
    const again = await server.request('spin');
    expect(again.status).toBe(503);
    expect((await server.request('hello')).status).toBe(200);
  });

  it('ends a memory bomb with 503 and the process lives', async () => {
    const res = await server.request('membomb');
    expect(res.status).toBe(503);
    expect(res.text).toContain('exceeded memory limit');
    expect((await server.request('hello')).text).toBe('Hello, world!');
  });

  it('reports a syntax error at load with its line, as a 500 on every request', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await server.request('syntax');
      expect(res.status).toBe(500);
      expect(res.text).toMatch(/SyntaxError/);
      expect(res.text).toMatch(/worker\.js:1:\d+/);
    }
    const log = server.logs.find((l) => String(l.msg).startsWith('worker syntax failed to load'));
    expect(log).toBeTruthy();
  });

  it('reports a top-level throw with its message and line', async () => {
    const res = await server.request('topthrow');
    expect(res.status).toBe(500);
    expect(res.text).toContain('missing API_KEY at startup');
    expect(res.text).toMatch(/worker\.js:2:\d+/);
  });

  it('fixing a broken worker makes it serve again', async () => {
    server.deploy('syntax', `export default { fetch() { return new Response('fixed') } }`);
    expect((await server.request('syntax')).text).toBe('fixed');
  });

  it('runs waitUntil work after the response', async () => {
    const res = await server.request('waituntil', '/?id=one');
    expect(res.text).toBe('accepted');
    expect(JSON.parse((await server.request('waituntil', '/status')).text)).toEqual([]);
    await new Promise((r) => setTimeout(r, 250));
    expect(JSON.parse((await server.request('waituntil', '/status')).text)).toEqual(['one']);
  });

  it('supports service-worker syntax', async () => {
    const res = await server.request('sw', '/', { method: 'POST', body: 'x' });
    expect(res.text).toBe('service worker says hi POST');
  });

  it('keeps repeated Set-Cookie headers apart', async () => {
    const res = await server.request('cookies');
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; HttpOnly']);
    expect(res.headers['x-custom']).toBe('yes');
  });

  it('answers HEAD without a body but with the length', async () => {
    const res = await server.request('hello', '/', { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    expect(res.headers['content-length']).toBe('13');
  });

  it('sends bodiless statuses and binary bodies intact', async () => {
    const empty = await server.request('status');
    expect(empty.status).toBe(204);
    expect(empty.headers['x-empty']).toBe('1');
    const bin = await server.request('binary');
    expect([...bin.body]).toEqual(Array.from({ length: 256 }, (_, i) => i));
  });

  it('refuses a body over the limit with 413 and keeps serving', async () => {
    const res = await server.request('echo', '/', { method: 'POST', body: Buffer.alloc(5 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect((await server.request('hello')).status).toBe(200);
  });

  it('answers 404 when no worker matches', async () => {
    const res = await server.request('nosuchworker');
    expect(res.status).toBe(404);
    expect(res.text).toContain('No worker matched');
  });

  it('writes one log line per request with worker, method, path, status, cpu_ms, wall_ms', async () => {
    await server.request('hello', '/logged-path');
    const line = server.logs.find((l) => l.msg === 'request' && l.path === '/logged-path');
    expect(line).toMatchObject({ worker: 'hello', method: 'GET', path: '/logged-path', status: 200 });
    expect(typeof line?.cpu_ms).toBe('number');
    expect(typeof line?.wall_ms).toBe('number');
  });

  it('forwards console output to the host log with worker and request id', async () => {
    await server.request('logger');
    const line = server.logs.find((l) => l.worker === 'logger' && String(l.msg).startsWith('hello from the guest'));
    expect(line?.msg).toBe('hello from the guest { a: 1 }');
    expect(String(line?.requestId)).toMatch(/^[0-9a-f]{16}$/);
    const request = server.logs.find((l) => l.msg === 'request' && l.worker === 'logger');
    expect(request?.requestId).toBe(line?.requestId);
    expect(server.logs.find((l) => l.worker === 'logger' && l.msg === 'bad thing')?.level).toBe(50);
  });

  it('adds Server-Timing with cold on the first request only', async () => {
    server.deploy('fresh', `export default { fetch() { return new Response('fresh') } }`);
    const first = await server.request('fresh');
    expect(first.headers['server-timing']).toMatch(/^cold;dur=[\d.]+, cpu;dur=[\d.]+, total;dur=[\d.]+$/);
    const second = await server.request('fresh');
    expect(second.headers['server-timing']).toMatch(/^cpu;dur=[\d.]+, total;dur=[\d.]+$/);
  });
});

describe('Server-Timing can be turned off', () => {
  it('omits the header', async () => {
    const server = await startTestServer({ hello: workers.hello }, { serverTiming: false });
    try {
      const res = await server.request('hello');
      expect(res.status).toBe(200);
      expect(res.headers['server-timing']).toBeUndefined();
    } finally {
      await server.close();
    }
  });
});
