// Code that runs with no request of its worker in flight: a callback that outlived its request (an
// answer the host gave after the response), or a chain the top level started without awaiting it.
// It is charged to no invocation and limited by nothing a request carries, so: its I/O is refused
// (at the top level with workerd's words, afterwards because the request has ended), and its CPU
// is watched while the isolate is idle: past one invocation's CPU limit the isolate is ended, and
// the worker runs in the background class of isolate threads, as after a breach in a request.
// That includes guest code the host itself runs once the request is over: the pulls of a fetch's
// request body the handler did not await.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { NeighbourLoad } from '../helpers/neighbour-load.js';
import { installKV, KVService, MemoryBackend } from '../../bindings/kv/index.js';

const KV = { KV: { type: 'kv_namespace' as const, namespace_id: 'outside' } };
const digest = `crypto.subtle.digest('SHA-256', new Uint8Array(1))`;

let server: TestServer;
let kv: KVService;
let neighbour: NeighbourLoad;
let upstream: http.Server;

beforeAll(async () => {
  // An upstream that holds off reading a request body for 1.5 s: the sender meets back-pressure,
  // and pulls the body's next chunk only then, long after the request that started the fetch.
  upstream = http.createServer((req, res) => {
    req.pause();
    setTimeout(() => {
      req.resume();
      req.on('end', () => res.end('read')).on('error', () => {});
    }, 1_500);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
  const UPSTREAM = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`;
  server = await startTestServer(
    {
      neighbour: `export default { fetch() { return new Response('neighbour ok') } }`,
    },
    // calm for ten minutes: a worker moved to the background class stays there for the test
    { allowPrivateFetch: true, runtime: { backgroundClass: { enabled: true, calmMs: 600_000 } } },
  );
  kv = new KVService({ backend: new MemoryBackend(), sweepIntervalMs: 0 });
  installKV(server.runtime, kv);
  const deploy = (name: string, code: string) => server.deploy(name, { code, bindings: KV, limits: { cpuMs: 50 } });
  // The digest's answer comes back after the response went out: its continuation runs outside.
  deploy('spins-after-response', `export default { fetch() { ${digest}.then(() => { for (;;) {} }); return new Response('answered') } }`);
  // A body pulled only when asked for (highWaterMark 0): its first chunk fills the upstream's
  // buffers, and the pull after it spins, with the request long answered.
  deploy('spins-in-body-pull', `export default { fetch() {
    let pulls = 0;
    const body = new ReadableStream({ pull(controller) { if (pulls++ === 0) controller.enqueue(new Uint8Array(48 * 1024 * 1024)); else for (;;) {} } }, { highWaterMark: 0 });
    fetch('${UPSTREAM}', { method: 'POST', body, duplex: 'half' }).catch(() => {});
    return new Response('answered');
  } }`);
  // Spins only after a timer set once its request was answered: never charged to any request.
  deploy('spins-later', `export default { fetch() { ${digest}.then(() => new Promise((resolve) => setTimeout(resolve, 300))).then(() => { for (;;) {} }); return new Response('answered') } }`);
  deploy('writes-after-response', `export default { fetch(request, env) { ${digest}.then(() => env.KV.put('late', 'written')).catch((e) => console.log('refused: ' + e.message)); return new Response('answered') } }`);
  deploy('writes-in-wait-until', `export default { fetch(request, env, ctx) { ctx.waitUntil(${digest}.then(() => env.KV.put('kept', 'written'))); return new Response('answered') } }`);
  deploy('writes-at-top-level', `import { env } from 'cloudflare:workers'; await env.KV.put('top', 'written'); export default { fetch() { return new Response('loaded') } }`);
  neighbour = new NeighbourLoad(server);
});

afterAll(async () => {
  await neighbour?.stop();
  await server?.close();
  await kv?.close();
  upstream?.closeAllConnections();
  await new Promise((resolve) => upstream?.close(resolve));
});

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let waited = 0; waited < 20_000; waited += 50) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`still waiting for ${what}`);
}

describe('code that outlived its request', () => {
  it('is ended past one CPU limit when it spins with nothing in flight; the request was answered, the neighbour never fails', async () => {
    const res = await server.request('spins-after-response');
    expect(res.status).toBe(200);
    expect(res.text).toBe('answered');
    await until(() => server.logs.some((line) => line.worker === 'spins-after-response' && line.limit === 'cpu'), 'the isolate to be ended');
    const ended = server.logs.find((line) => line.worker === 'spins-after-response' && line.limit === 'cpu')!;
    expect(String(ended.msg)).toMatch(/ran code outside any request for more than its CPU limit \(cpu_ms 50\); isolate recycled|exceeded CPU time limit; isolate recycled/);
    // and the worker serves its next request from a fresh isolate
    expect((await server.request('spins-after-response')).text).toBe('answered');
    expect(neighbour.requests).toBeGreaterThan(0);
    expect(neighbour.failures).toBe(0);
  });

  it('is ended when the host pulls a body the request left behind and the pull spins; the next request is served, the neighbour never fails', async () => {
    const requests = neighbour.requests;
    const res = await server.request('spins-in-body-pull');
    expect(res.status).toBe(200);
    expect(res.text).toBe('answered');
    const ended = (line: (typeof server.logs)[number]) => line.worker === 'spins-in-body-pull' && String(line.msg).includes('ran code outside any request');
    await until(() => server.logs.some(ended), 'the isolate to be ended');
    expect(String(server.logs.find(ended)!.msg)).toBe('worker spins-in-body-pull ran code outside any request for more than its CPU limit (cpu_ms 50); isolate recycled');
    expect(server.runtime.background.has('spins-in-body-pull')).toBe(true);
    expect((await server.request('spins-in-body-pull')).text).toBe('answered');
    expect(neighbour.requests).toBeGreaterThan(requests);
    expect(neighbour.failures).toBe(0);
  });

  it('moves its worker to the background class when it breaches with nothing in flight, as a breach in a request does', async () => {
    expect(server.runtime.background.has('spins-later')).toBe(false);
    expect((await server.request('spins-later')).text).toBe('answered');
    const ended = (line: (typeof server.logs)[number]) => line.worker === 'spins-later' && String(line.msg).includes('ran code outside any request');
    await until(() => server.logs.some(ended), 'the isolate to be ended');
    expect(server.runtime.background.has('spins-later')).toBe(true);
    expect(server.logs.some((line) => line.worker === 'spins-later' && line.background === true)).toBe(true);
    expect(server.runtime.background.has('neighbour')).toBe(false);
  });

  it('has its I/O refused once the request has ended, and the refusal says why', async () => {
    expect((await server.request('writes-after-response')).status).toBe(200);
    await until(() => server.logs.some((line) => line.worker === 'writes-after-response' && String(line.msg).startsWith('refused:')), 'the refusal to be logged');
    const line = server.logs.find((l) => l.worker === 'writes-after-response' && String(l.msg).startsWith('refused:'))!;
    expect(String(line.msg)).toContain('no request of this worker is in flight');
    expect(await kv.get('outside', 'late')).toBeNull();
  });

  it('may do I/O it handed to ctx.waitUntil()', async () => {
    expect((await server.request('writes-in-wait-until')).status).toBe(200);
    await until(async () => (await kv.get('outside', 'kept')) !== null, 'the write kept by waitUntil');
    expect(Buffer.from((await kv.get('outside', 'kept'))!.value).toString()).toBe('written');
  });
});

describe('a top level', () => {
  it('cannot reach a binding: workerd\'s global-scope error fails the load, and nothing is written', async () => {
    const res = await server.request('writes-at-top-level');
    expect(res.status).toBe(500);
    expect(res.text).toContain('Disallowed operation called within global scope');
    expect(await kv.get('outside', 'top')).toBeNull();
  });
});
