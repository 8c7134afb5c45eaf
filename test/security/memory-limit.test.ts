// The memory limit is reported as the memory limit: a 503 naming it for every invocation it ends
// (concurrent ones included), never a 500 "Internal error" or the CPU limit; the neighbour and
// the process carry on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Each bomb answers normally unless asked (?bomb), so it can go off in a cold or a warm isolate.
const bomb = (loop: string) => `export default { fetch(request) {
  if (!new URL(request.url).searchParams.has('bomb')) return new Response('calm');
  const keep = []; for (;;) ${loop};
} }`;
const bombs: Record<string, string> = {
  // The finding of issue 22: plain JS arrays until the heap is full.
  'arrays': bomb('keep.push(new Array(1e6).fill(1.5))'),
  'big-arrays': bomb('keep.push(new Array(1e7).fill(1.5))'),
  'typed-arrays': bomb('keep.push(new Float64Array(1e6))'),
  'strings': bomb("keep.push('x'.repeat(1e6) + keep.length)"),
};

let server: TestServer;
beforeAll(async () => {
  const workers: Record<string, { code: string; limits?: { cpuMs: number } }> = {};
  // A generous CPU limit, so that memory is the limit they meet.
  for (const [name, code] of Object.entries(bombs)) workers[name] = { code, limits: { cpuMs: 5000 } };
  server = await startTestServer({
    ...workers,
    // Several requests in one isolate: each waits, then one of them fills the heap.
    'concurrent': { code: `export default { async fetch(request) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (new URL(request.url).searchParams.has('bomb')) { const keep = []; for (;;) keep.push(new Array(1e6).fill(1.5)); }
      await new Promise((resolve) => setTimeout(resolve, 300));
      return new Response('survived');
    } }`, limits: { cpuMs: 5000 } },
    'neighbour': `export default { fetch() { return new Response('neighbour ok') } }`,
  });
});
afterAll(() => server?.close());

describe('memory limit', () => {
  it('a memory bomb is a 503 naming the memory limit, in a cold isolate and in a warm one', async () => {
    let neighbourFailures = 0;
    for (const name of Object.keys(bombs)) {
      for (const warm of [false, true]) {
        if (warm) expect((await server.request(name)).text, name).toBe('calm');
        const res = await server.request(name, '/?bomb');
        expect(`${res.status} ${res.text}`, `${name}${warm ? ' (warm)' : ''}`).toMatch(/^503 .*exceeded memory limit/);
        if ((await server.request('neighbour')).text !== 'neighbour ok') neighbourFailures++;
      }
    }
    expect(neighbourFailures).toBe(0);
  }, 120_000);

  it('every concurrent request of an isolate that hits the limit gets the 503 naming it', async () => {
    expect((await server.request('concurrent')).text).toBe('survived');
    const all = await Promise.all([
      server.request('concurrent', '/?bomb'),
      ...Array.from({ length: 4 }, () => server.request('concurrent', '/')),
    ]);
    for (const res of all) expect(`${res.status} ${res.text}`).toMatch(/^503 .*exceeded memory limit/);
    expect(server.logs.filter((l) => l.msg === 'ingress failure')).toEqual([]);
    expect((await server.request('neighbour')).text).toBe('neighbour ok');
    expect((await server.request('concurrent')).text).toBe('survived');
  });
});
