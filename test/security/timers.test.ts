// Timers as on Workers (a Spectre mitigation): Date.now(), new Date() and performance.now() stand
// still while guest code runs and move on I/O (a host call's answer, a timer, the next event), so
// a worker cannot time its own execution. performance.now() is the same clock as Date.now() with
// timeOrigin 0, as in workerd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    // Its loop is ~8 ms of CPU here, of the 50 ms default (these tests are about the clock).
    clock: { limits: { cpuMs: 1000 }, code: `export default { async fetch() {
      const a = Date.now(), p = performance.now(), d = new Date().getTime();
      let x = 0; for (let i = 0; i < 3e6; i++) x += i % 7;
      const b = Date.now(), q = performance.now(), s = Date();
      await new Promise((r) => setTimeout(r, 30));
      const c = Date.now();
      return Response.json({ a, b, c, p, q, d, x, s, origin: performance.timeOrigin, isDate: new Date() instanceof Date, sub: new (class extends Date {})(5).getTime() });
    } }` },
    neighbour: `export default { fetch() { return new Response('neighbour ok') } }`,
  });
});
afterAll(() => server.close());

describe('the guest clock', () => {
  it('stands still during execution and moves on I/O', async () => {
    const before = Date.now();
    const out = JSON.parse((await server.request('clock')).text);
    expect(out.a).toBe(out.b);
    expect(out.d).toBe(out.a);
    expect(out.c - out.b).toBeGreaterThanOrEqual(25);
    expect(Math.abs(out.a - before)).toBeLessThan(5_000);
    expect(new Date(out.s).getTime()).toBe(Math.floor(out.a / 1000) * 1000);
  });

  it('performance.now() is the same frozen clock, timeOrigin 0 as in workerd', async () => {
    const out = JSON.parse((await server.request('clock')).text);
    expect(out.origin).toBe(0);
    expect(out.p).toBe(out.a);
    expect(out.q).toBe(out.p);
  });

  it('Date keeps working as a constructor, for instanceof and for subclasses', async () => {
    const out = JSON.parse((await server.request('clock')).text);
    expect(out.isDate).toBe(true);
    expect(out.sub).toBe(5);
    const answers = await Promise.all(Array.from({ length: 10 }, () => server.request('neighbour')));
    expect(answers.filter((r) => r.status !== 200)).toHaveLength(0);
  });
});
