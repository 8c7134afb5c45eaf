// Per-worker limits: wall time, CPU overrides, big allocations, subrequests, startup time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('limits', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      hang: { code: `export default { fetch() { return new Promise(() => {}) } }`, limits: { wallMs: 200 } },
      waitforever: { code: `let finished = 0; export default { fetch(req, env, ctx) { if (new URL(req.url).pathname === '/n') return new Response(String(finished)); ctx.waitUntil(new Promise(() => {})); ctx.waitUntil(new Promise((r) => setTimeout(r, 20)).then(() => finished++)); return new Response('sent') } }`, limits: { wallMs: 300 } },
      // Iteration counts, not clock reads: CPU time must not depend on how busy the machine is.
      generous: { code: `export default { fetch() { let x = 0; for (let i = 0; i < 2e7; i++) x = (x + i) | 0; return new Response('done ' + (x !== 1)) } }`, limits: { cpuMs: 2000 } },
      strict: { code: `export default { fetch() { let x = 0; for (let i = 0; i < 1e10; i++) x = (x + i) | 0; return new Response('done ' + x) } }`, limits: { cpuMs: 20 } },
      arraybuffers: { code: `export default { fetch() { const keep = []; for (let i = 0; i < 64; i++) keep.push(new ArrayBuffer(16 * 1024 * 1024)); return new Response('kept ' + keep.length) } }`, limits: { memoryMb: 64, cpuMs: 5000 } },
      slowstart: { code: `const end = Date.now() + 5000; while (Date.now() < end) {}\nexport default { fetch() { return new Response('never') } }`, limits: { startupMs: 100 } },
      // Light until asked to spin: a warm worker's spin is cut like a first request's.
      turns: { code: `export default { fetch(req) { if (new URL(req.url).pathname === '/spin') { for (;;) {} } return new Response('light') } }`, limits: { cpuMs: 30 } },
      // Its first request runs well past the CPU limit (an iteration count: CPU, whatever the
      // machine's load): cut by the watchdog mid-run, or, should it finish between two readings,
      // by the reading taken when its answer arrives.
      overshoot: { code: `export default { fetch() { let x = 0; for (let i = 0; i < 3e8; i++) x = (x + i) | 0; return new Response('too late ' + x) } }`, limits: { cpuMs: 20 } },
      ok: `export default { fetch() { return new Response('ok') } }`,
    });
  });
  afterAll(() => server.close());

  it('ends an invocation that never answers with 503 for wall time', async () => {
    const started = Date.now();
    const res = await server.request('hang');
    expect(res.status).toBe(503);
    expect(res.text).toContain('exceeded wall time limit');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect((await server.request('ok')).status).toBe(200);
  });

  it('bounds waitUntil work by the wall limit without holding the response', async () => {
    const res = await server.request('waitforever');
    expect(res.text).toBe('sent');
    await new Promise((r) => setTimeout(r, 450));
    expect((await server.request('waitforever', '/n')).text).toBe('1');
    const record = server.logs.find((l) => l.worker === 'waitforever');
    expect(record).toBeTruthy();
  });

  it('honours a per-worker CPU limit in both directions', async () => {
    expect((await server.request('generous')).status).toBe(200);
    const res = await server.request('strict');
    expect(res.status).toBe(503);
    expect(res.text).toContain('exceeded CPU time limit');
  });

  it('answers 503 to a first request that used more CPU than its limit', async () => {
    const res = await server.request('overshoot');
    expect(res.status).toBe(503);
    expect(res.text).toContain('exceeded CPU time limit');
    expect(server.logs.some((l) => l.worker === 'overshoot' && l.limit === 'cpu')).toBe(true);
  });

  it('cuts a warm, usually light worker that suddenly spins, and keeps serving others', async () => {
    for (let i = 0; i < 5; i++) expect((await server.request('turns')).text).toBe('light');
    const [spun, other] = await Promise.all([server.request('turns', '/spin'), server.request('ok')]);
    expect(spun.status).toBe(503);
    expect(spun.text).toContain('exceeded CPU time limit');
    expect(other.text).toBe('ok');
    // A fresh isolate takes over; the worker is light again.
    expect((await server.request('turns')).text).toBe('light');
  });

  it('turns failed big allocations into 503 for memory and recycles the isolate', async () => {
    const res = await server.request('arraybuffers');
    expect(res.status, res.text).toBe(503);
    expect(res.text).toContain('exceeded memory limit');
    expect((await server.request('ok')).text).toBe('ok');
  });

  it('refuses a worker whose top level runs past the startup limit', async () => {
    const res = await server.request('slowstart');
    expect(res.status).toBe(503);
    expect(res.text).toMatch(/startup time limit/);
  });
});
