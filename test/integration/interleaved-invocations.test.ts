// Requests that interleave in one isolate keep their own invocation across awaits: each one's
// fetch (after timers that make the later requests run first) is made for, and answered to, that
// request. Before the invocation rode in V8's continuation data (sandbox/async-context.ts), the
// guest guessed it after an await, and such fetches were made for a request that had already
// ended: they never answered.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let upstream: http.Server;
let server: TestServer;

beforeAll(async () => {
  upstream = http.createServer((req, res) => res.end(new URL(req.url!, 'http://x').searchParams.get('id')));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  server = await startTestServer(
    {
      w: `export default { async fetch(request) {
        const params = new URL(request.url).searchParams;
        await new Promise((r) => setTimeout(r, Number(params.get('delay'))));
        await new Promise((r) => setTimeout(r, 1));
        const answer = await fetch(${JSON.stringify(url)} + '/?id=' + params.get('id'));
        return new Response(await answer.text());
      } }`,
    },
    { allowPrivateFetch: true },
  );
});
afterAll(async () => {
  await server.close();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

it('keeps each of 8 interleaved requests its own fetch', async () => {
  const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => server.request('w', `/?id=r${i}&delay=${(8 - i) * 3}`)));
  expect(answers.map((a) => a.text)).toEqual(Array.from({ length: 8 }, (_, i) => `r${i}`));
}, 15_000);
