// Amplification: one request must not make the host do unbounded work. A worker that binds itself
// and fans out (30 calls per level, 3 levels) reached ~28,000 invocations from one request; one
// that logs 64 KB lines wrote ~110 MB of host log per request. Both are now bounded and charged to
// the request that caused them, and a neighbour's requests all succeed meanwhile.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { registerServiceBindings } from '../../bindings/service/host.js';
import type { InvocationRecord } from '../../src/runtime/worker-instance.js';
import { MAX_LOG_CHARS_PER_INVOCATION, MAX_LOG_LINE_CHARS } from '../../src/runtime/log-budget.js';
import { LOG_LINE_FLOOR_CHARS } from '../../protocol/console-limits.js';
import { OPS } from '../../protocol/wall.js';
import { MAX_INVOCATIONS_PER_REQUEST, TOO_MANY_INVOCATIONS } from '../../protocol/request-tree.js';
import * as hostTree from '../../src/model/request-tree.js';

let server: TestServer;
const records: InvocationRecord[] = [];
/** service calls that crossed to the host, and how many of them the host refused at the cap */
const crossings = { calls: 0, refusedAtCap: 0 };

beforeAll(async () => {
  server = await startTestServer({
    fan: {
      code: `export default { async fetch(request, env) {
        const level = Number(new URL(request.url).searchParams.get('level') || '0');
        if (level >= 3) return new Response('leaf');
        const calls = [];
        for (let i = 0; i < 30; i++) calls.push(env.SELF.fetch('https://fan/?level=' + (level + 1)).then((r) => r.text(), (e) => 'E:' + e.message));
        const out = await Promise.all(calls);
        // refusals anywhere below, as the callees report them up
        return Response.json({ refused: out.filter((t) => t.includes('Too many worker invocations')).length, errors: [...new Set(out.filter((t) => t.startsWith('E:')))].slice(0, 3), below: out.filter((t) => t.startsWith('{')).map((t) => JSON.parse(t).errors).flat().slice(0, 3) });
      } }`,
      bindings: { SELF: { type: 'service', service: 'fan' } },
      limits: { subrequests: 1000 },
    },
    // the same fan-out over RPC: a WorkerEntrypoint calling its own method through the binding
    rpcfan: {
      code: `import { WorkerEntrypoint } from 'cloudflare:workers';
      export default class extends WorkerEntrypoint {
        async fetch() { return Response.json(await this.spread(0)); }
        async spread(level) {
          if (level >= 3) return { refused: 0, errors: [] };
          const calls = [];
          for (let i = 0; i < 30; i++) calls.push(this.env.SELF.spread(level + 1).then((r) => r, (e) => ({ refused: 1, errors: [e.constructor.name + ':' + e.message] })));
          const out = await Promise.all(calls);
          return { refused: out.reduce((n, r) => n + r.refused, 0), errors: [...new Set(out.flatMap((r) => r.errors))] };
        }
      }`,
      bindings: { SELF: { type: 'service', service: 'rpcfan' } },
      limits: { subrequests: 1000 },
    },
    chatty: `export default { fetch() {
      const line = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 200; i++) console.log(line);
      return new Response('logged');
    } }`,
    neighbour: `export default { fetch() { return new Response('neighbour ok') } }`,
  });
  // Every service call that crosses the wall reaches the op registered here: counted on its way.
  const registerOp = server.runtime.registerOp.bind(server.runtime);
  server.runtime.registerOp = (op, handler) =>
    registerOp(op, op !== OPS.serviceFetch && op !== OPS.serviceRpc ? handler : async (call, args) => {
      crossings.calls++;
      try {
        return await handler(call, args);
      } catch (error) {
        if ((error as Error).message === TOO_MANY_INVOCATIONS) crossings.refusedAtCap++;
        throw error;
      }
    });
  registerServiceBindings(server.runtime);
  server.runtime.onInvocation((record) => records.push(record));
});
afterAll(() => server.close());

describe('service-binding fan-out', () => {
  it('is cut at 32 invocations per top-level request, the rest refused with an error the caller sees', async () => {
    records.length = 0;
    const neighbour = Promise.all(Array.from({ length: 30 }, () => server.request('neighbour')));
    const res = await server.request('fan');
    expect(res.status).toBe(200);
    const out = JSON.parse(res.text);
    expect(out.refused).toBeGreaterThan(0);
    expect([...out.errors, ...out.below].some((e: string) => e.includes('one request may invoke at most 32 workers'))).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(records.filter((r) => r.worker === 'fan').length).toBeLessThanOrEqual(32);
    const answers = await neighbour;
    expect(answers.filter((r) => r.status !== 200 || r.text !== 'neighbour ok')).toHaveLength(0);
  });

  it('refuses the calls past the allowance in the guest, with the host\'s error and counts, without crossing', async () => {
    records.length = 0;
    crossings.calls = crossings.refusedAtCap = 0;
    const res = await server.request('fan');
    const out = JSON.parse(res.text);
    await new Promise((r) => setTimeout(r, 100));
    // What the user sees is what the host alone gave: 32 invocations; of the 900 level-1 calls one
    // was admitted, and the 30 calls of the one level-2 invocation were all refused: 929 refusals,
    // each with the host's message.
    expect(records.filter((r) => r.worker === 'fan').length).toBe(32);
    const level1 = out.below.length; // (errors reported up from the level-1 invocations, deduplicated)
    expect(level1).toBeGreaterThan(0);
    expect([...out.errors, ...out.below].every((e: string) => e === 'E:' + TOO_MANY_INVOCATIONS)).toBe(true);
    // Usage: the admitted calls only (30 + 1) are subrequests; a call refused at the cap is not.
    expect(records.filter((r) => r.worker === 'fan').reduce((sum, r) => sum + r.subrequests, 0)).toBe(31);
    // The crossings: the top level's 30; of the level-1 invocations' calls, those of the first
    // to run in each isolate of the worker (4 at most; it spends the allowance for the others
    // there); none of the level-2 invocation's (handed 0). Without the guest's count: 960
    // crossings, 929 of them refused on the host.
    expect(crossings.calls - crossings.refusedAtCap).toBe(31);
    expect(crossings.calls).toBeLessThanOrEqual(30 + 4 * 30);
  });

  it('does the same for calls over RPC', async () => {
    records.length = 0;
    crossings.calls = crossings.refusedAtCap = 0;
    const res = await server.request('rpcfan');
    const out = JSON.parse(res.text);
    await new Promise((r) => setTimeout(r, 100));
    expect(records.filter((r) => r.worker === 'rpcfan').length).toBe(32);
    expect(out.refused).toBe(929);
    expect(out.errors).toEqual(['Error:' + TOO_MANY_INVOCATIONS]);
    expect(crossings.calls - crossings.refusedAtCap).toBe(31);
    expect(crossings.calls).toBeLessThanOrEqual(30 + 4 * 30);
  });

  it('the guest counts with the host\'s figures and refuses with its words', () => {
    expect(MAX_INVOCATIONS_PER_REQUEST).toBe(hostTree.MAX_INVOCATIONS_PER_REQUEST);
    expect(TOO_MANY_INVOCATIONS).toBe(hostTree.TOO_MANY_INVOCATIONS);
  });

  it('charges each call to the caller as a subrequest, shared by the whole request', async () => {
    records.length = 0;
    await server.request('fan');
    await new Promise((r) => setTimeout(r, 100));
    const fan = records.filter((r) => r.worker === 'fan');
    const subrequests = fan.reduce((sum, r) => sum + r.subrequests, 0);
    // every invocation but the first was started by a call some invocation of the request paid for
    expect(subrequests).toBeGreaterThanOrEqual(fan.length - 1);
  });
});

describe('console output', () => {
  it('cuts long lines with a marker, drops lines past the per-invocation budget and counts them', async () => {
    const neighbour = Promise.all(Array.from({ length: 30 }, () => server.request('neighbour')));
    const res = await server.request('chatty');
    expect(res.text).toBe('logged');
    await new Promise((r) => setTimeout(r, 100));
    const lines = server.logs.filter((l) => l.worker === 'chatty' && l.console === 'log');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(200);
    for (const line of lines) {
      expect((line.msg as string).length).toBeLessThan(MAX_LOG_LINE_CHARS + 100);
      expect(line.msg).toMatch(/… \[truncated: 49152 more characters\]$/);
    }
    const written = lines.reduce((sum, l) => sum + (l.msg as string).length, 0);
    expect(written).toBeLessThan(MAX_LOG_CHARS_PER_INVOCATION + MAX_LOG_LINE_CHARS + 100);
    expect(server.logs.some((l) => l.worker === 'chatty' && l.limit === 'console' && /console output limit reached/.test(l.msg as string))).toBe(true);
    const dropped = server.logs.find((l) => l.worker === 'chatty' && typeof l.droppedLines === 'number');
    expect(dropped?.droppedLines).toBe(200 - lines.length);
    const answers = await neighbour;
    expect(answers.filter((r) => r.status !== 200 || r.text !== 'neighbour ok')).toHaveLength(0);
  });
});

describe('console floods', () => {
  let flood: TestServer;
  beforeAll(async () => {
    flood = await startTestServer(
      {
        // 100,000 calls: ~11 ms of CPU here, of the 50 ms default (this test is about the log bound)
        empty: { limits: { cpuMs: 1000 }, code: `export default { fetch() { for (let i = 0; i < 100000; i++) console.log(''); return new Response('done'); } }` },
        steady: `export default { fetch() { const line = 'y'.repeat(10000); for (let i = 0; i < 20; i++) console.log(line); return new Response('done'); } }`,
        quiet: `export default { fetch() { console.log('one line'); return new Response('quiet'); } }`,
      },
      { runtime: { consoleRate: { charsPerSecond: 64 * 1024, burstChars: MAX_LOG_CHARS_PER_INVOCATION } } },
    );
  });
  afterAll(() => flood.close());

  it('bounds a flood of empty lines by the log records they cost the host, and counts every dropped line', async () => {
    const res = await flood.request('empty');
    expect(res.text).toBe('done');
    await new Promise((r) => setTimeout(r, 100));
    const written = flood.logs.filter((l) => l.worker === 'empty' && l.console === 'log').length;
    expect(written).toBe(MAX_LOG_CHARS_PER_INVOCATION / LOG_LINE_FLOOR_CHARS);
    const dropped = flood.logs.find((l) => l.worker === 'empty' && typeof l.droppedLines === 'number');
    expect(dropped?.droppedLines).toBe(100000 - written);
    expect(flood.logs.filter((l) => l.worker === 'empty' && l.limit === 'console')).toHaveLength(1);
  });

  it("holds a worker's invocations together to its console rate, and leaves other workers' lines alone", async () => {
    for (let i = 0; i < 12; i++) {
      expect((await flood.request('steady')).text).toBe('done');
      expect((await flood.request('quiet')).text).toBe('quiet');
    }
    await new Promise((r) => setTimeout(r, 100));
    const chars = flood.logs.filter((l) => l.worker === 'steady' && l.console === 'log').reduce((sum, l) => sum + (l.msg as string).length, 0);
    // 12 requests asked for 2.4 M characters; the bucket holds 256 K and refills 64 K a second
    expect(chars).toBeLessThan(1_200_000);
    expect(flood.logs.some((l) => l.worker === 'steady' && l.limit === 'console-rate' && /rate limit reached/.test(l.msg as string))).toBe(true);
    const dropped = flood.logs.filter((l) => l.worker === 'steady' && typeof l.droppedLines === 'number').reduce((sum, l) => sum + (l.droppedLines as number), 0);
    expect(dropped + chars / 10000).toBe(240);
    expect(flood.logs.filter((l) => l.worker === 'quiet' && l.console === 'log')).toHaveLength(12);
  });
});
