// An outbound fetch's abort reaches that fetch only, when one worker runs on more than one isolate
// (here a retired isolate still draining its request beside the new one). Every isolate numbers
// its fetches from the same start, so the host keys them per isolate (bindings/fetch/host.ts).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let upstream: http.Server;
let upstreamUrl = '';
/** /hold requests not yet answered: each is answered once one of them is aborted (its
 *  connection closes), or after a while regardless */
const held = new Set<http.ServerResponse>();
let holdsSeen = 0;
/** /gate requests: answered once two /hold requests have arrived */
const gates: http.ServerResponse[] = [];

function releaseHeld(): void {
  for (const res of held) res.end('held-body');
  held.clear();
}

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    if (req.url === '/hold') {
      holdsSeen++;
      held.add(res);
      res.on('close', () => {
        if (!res.writableEnded && held.delete(res)) releaseHeld();
      });
      setTimeout(releaseHeld, 8000).unref();
      if (holdsSeen >= 2) for (const gate of gates.splice(0)) gate.end('go');
      return;
    }
    if (req.url === '/gate') {
      if (holdsSeen >= 2) return void res.end('go');
      return void gates.push(res);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()); }));

describe('outbound fetch abort across isolates of one worker', () => {
  let server: TestServer;
  beforeAll(async () => {
    const code = `export default { async fetch(request) {
      if (new URL(request.url).pathname === '/abort-own') {
        // this isolate's first fetch: the same fetchId as the other isolate's first
        const controller = new AbortController();
        const pending = fetch(UPSTREAM + '/hold', { signal: controller.signal });
        await (await fetch(UPSTREAM + '/gate')).text();
        controller.abort();
        try { await pending; return new Response('not aborted') } catch (e) { return new Response(e.name) }
      }
      try { const r = await fetch(UPSTREAM + '/hold'); return new Response(await r.text()) } catch (e) { return new Response(e.name + ': ' + e.message) }
    } }`;
    server = await startTestServer({ w: { code: code.replaceAll('UPSTREAM', JSON.stringify(upstreamUrl)) } }, { allowPrivateFetch: true });
  });
  afterAll(() => server.close());

  it("one isolate's AbortSignal aborts its own fetch, not the other isolate's", async () => {
    const first = server.request('w', '/abort-own');
    // The first isolate's fetch is in flight: retire that isolate (it drains its request) so that
    // the next request starts a second isolate of the same worker.
    const deadline = Date.now() + 10_000;
    while (holdsSeen < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(holdsSeen).toBe(1);
    server.runtime.evict('w');
    const second = server.request('w', '/');
    const [a, b] = await Promise.all([first, second]);
    expect(String(b.headers['server-timing'])).toMatch(/^cold;/);
    expect(a.text).toBe('AbortError');
    expect(b.text).toBe('held-body');
  }, 20_000);
});
