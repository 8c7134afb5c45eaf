// HTMLRewriter beyond what the differential harness compares with workerd
// (test/differential/workers/html-rewriter-probe.js): it is installed only where a worker uses
// it, a throwing handler fails that response alone, and its WebAssembly memory is the worker's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const page = '<html><body><p>one</p><p>two</p></body></html>';

describe('HTMLRewriter', () => {
  let server: TestServer;
  beforeAll(async () => {
    // The first worker to load the add-on compiles lol-html's wasm: ~110 ms of wall time here, of
    // the 1 s startup default, and ~9 ms of CPU of the 50 ms default on a first request. A slower,
    // loaded CI machine could cross them; these tests are about the rewriting.
    const ROOMY = { startupMs: 10_000, cpuMs: 1000 };
    server = await startTestServer({
      rewrite: { limits: ROOMY, code: `export default { fetch() {
        return new HTMLRewriter().on('p', { element(el) { el.setAttribute('class', 'x') } }).transform(new Response(${JSON.stringify(page)}));
      } }` },
      throws: { limits: ROOMY, code: `export default { fetch(req) {
        const fail = new URL(req.url).searchParams.has('fail');
        return new HTMLRewriter().on('p', { element(el) { if (fail) throw new Error('handler failed on purpose'); el.append('!') } })
          .transform(new Response(${JSON.stringify(page)}));
      } }` },
      plain: `export default { fetch() { return new Response(typeof globalThis['HTML' + 'Rewriter']) } }`,
      wasm: { limits: { ...ROOMY, memoryMb: 32 }, code: `export default { async fetch() {
        const res = new HTMLRewriter().on('p', { element() {} }).transform(new Response(${JSON.stringify(page)}));
        await res.text();
        // lol-html's memory is exported by its module and tracked like any worker's wasm memory.
        return new Response('ok');
      } }` },
    });
  });
  afterAll(() => server.close());

  it('rewrites a response body', async () => {
    const res = await server.request('rewrite');
    expect(res.text).toBe('<html><body><p class="x">one</p><p class="x">two</p></body></html>');
  });

  it('is not installed in isolates of workers that do not use it', async () => {
    expect((await server.request('plain')).text).toBe('undefined');
  });

  it('fails only the response whose handler threw, and logs why', async () => {
    const failed = await server.request('throws', '/?fail').catch((error: Error) => ({ status: 0, text: error.message }));
    expect(failed.text).not.toContain('<p>one!</p>');
    const ok = await server.request('throws');
    expect(ok.text).toBe('<html><body><p>one!</p><p>two!</p></body></html>');
    expect(server.logs.some((l) => JSON.stringify(l).includes('handler failed on purpose'))).toBe(true);
  });

  it('serves many rewrites from one isolate under a 32 MB memory limit (lol-html memory included)', async () => {
    let failures = 0;
    for (let i = 0; i < 50; i++) if ((await server.request('wasm')).text !== 'ok') failures++;
    expect(failures).toBe(0);
  });
});
