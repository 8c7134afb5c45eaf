// What a worker's outbound fetch may make the host do for it: a tiny compressed response that
// inflates to hundreds of megabytes is streamed and bounded (it was inflated whole in host memory),
// and one worker holding an origin's connections leaves a neighbour's fetches to that origin alone
// (all tenants shared one pool).
import http from 'node:http';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { WorkerAgents } from '../../bindings/fetch/agents.js';

let upstream: http.Server;
let base = '';
let bomb: Buffer;
let server: TestServer;
const INFLATED = 64 * 1024 * 1024;

function brotliOfZeros(bytes: number): Buffer {
  const out: Buffer[] = [];
  const encoder = zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } });
  encoder.on('data', (c: Buffer) => out.push(c));
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < bytes / chunk.length; i++) encoder.write(chunk);
  encoder.end();
  return new Promise<Buffer>((resolve) => encoder.on('end', () => resolve(Buffer.concat(out)))) as unknown as Buffer;
}

beforeAll(async () => {
  bomb = await (brotliOfZeros(INFLATED) as unknown as Promise<Buffer>);
  upstream = http.createServer((req, res) => {
    if (req.url === '/bomb') return res.writeHead(200, { 'content-encoding': 'br', 'content-length': bomb.length }).end(bomb);
    if (req.url === '/small-br') {
      const body = zlib.brotliCompressSync(Buffer.from('hello compressed'));
      return res.writeHead(200, { 'content-encoding': 'br', 'content-length': body.length }).end(body);
    }
    if (req.url === '/hold') return void setTimeout(() => res.end('held'), 1_500);
    res.end('fast');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  server = await startTestServer(
    {
      bomb: { limits: { memoryMb: 32, cpuMs: 5_000 }, code: `export default { async fetch() {
        const r = await fetch(${JSON.stringify(base)} + '/bomb');
        const reader = r.body.getReader(); let n = 0;
        try { for (;;) { const { value, done } = await reader.read(); if (done) break; n += value.byteLength } return new Response('read ' + n) }
        catch (e) { return new Response(e.name + ': ' + e.message + ' after ' + n) }
      } }` },
      smallbr: `export default { async fetch() { return new Response(await (await fetch(${JSON.stringify(base)} + '/small-br')).text()) } }`,
      holder: `export default { async fetch() {
        await Promise.all(Array.from({ length: 8 }, () => fetch(${JSON.stringify(base)} + '/hold').then((r) => r.text())));
        return new Response('held all');
      } }`,
      neighbour: `export default { async fetch() {
        try { const r = await fetch(${JSON.stringify(base)} + '/fast', { signal: AbortSignal.timeout(1000) }); return new Response(await r.text()) }
        catch (e) { return new Response(e.name, { status: 502 }) }
      } }`,
    },
    { allowPrivateFetch: true, fetchAgents: { connectionsPerOrigin: 4 } },
  );
});
afterAll(async () => {
  await server.close();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

describe('decompression bomb', () => {
  it('is streamed to the guest and cut at the worker memory limit with a TypeError', async () => {
    expect(bomb.length).toBeLessThan(INFLATED / 1000);
    const neighbour = Promise.all(Array.from({ length: 20 }, () => server.request('neighbour')));
    const res = await server.request('bomb');
    expect(res.text).toMatch(/^TypeError: fetch: the response body is larger than 33554432 bytes once decompressed \(the limit for one subrequest\) after \d+$/);
    const answers = await neighbour;
    expect(answers.filter((r) => r.status !== 200 || r.text !== 'fast')).toHaveLength(0);
  });

  it('still decompresses ordinary compressed responses', async () => {
    expect((await server.request('smallbr')).text).toBe('hello compressed');
  });
});

describe('connection pools', () => {
  it("are one per worker: a worker holding an origin's connections does not queue a neighbour's fetch", async () => {
    const holding = server.request('holder');
    await new Promise((r) => setTimeout(r, 200));
    const answers = await Promise.all(Array.from({ length: 10 }, () => server.request('neighbour')));
    expect(answers.filter((r) => r.status !== 200 || r.text !== 'fast')).toHaveLength(0);
    expect((await holding).text).toBe('held all');
  });

  it('are closed once their worker has been idle', async () => {
    const agents = new WorkerAgents(((_h: string, _o: unknown, cb: (e: null, a: string, f: number) => void) => cb(null, '127.0.0.1', 4)) as never, { connectionsPerOrigin: 2, idleMs: 50 });
    const a = agents.acquire('a');
    const b = agents.acquire('b');
    expect(a.dispatcher).not.toBe(b.dispatcher);
    expect(agents.acquire('a').dispatcher).toBe(a.dispatcher);
    expect(agents.size).toBe(2);
    b.release();
    await new Promise((r) => setTimeout(r, 120));
    expect(agents.size).toBe(1); // a is still in use (acquired twice, released never)
    await agents.close();
  });
});
