// After a version's first request its code cache is made again in the isolate (worker-loader.ts
// cacheAfterRun: the modules compiled there, on its thread), and after a process's first Durable
// Object event the add-ons' cache likewise (addons.ts cacheAfterEvent). The CPU meter reads the
// isolate's clock, so a request that came in while that compile ran was charged for it: with a
// large worker, several ms of a CPU limit that may be 10. Now that platform work starts only while
// no invocation is in flight, and a request that comes meanwhile enters when it ends (it held the
// isolate's lock anyway): the request's record shows its own CPU only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger } from '../helpers/server.js';
import { Runtime } from '../../src/runtime/runtime.js';
import type { WorkerDefinition } from '../../src/model/worker-definition.js';
import type { RuntimeRequest } from '../../src/runtime/contract.js';

// Many functions, all run by the warm-up path: the cache made after it holds them all, and
// making it takes the isolate's thread a while (~5 ms here, a request to '/' ~0.1 ms).
const FUNCTIONS = 8000;
let code = '';
for (let i = 0; i < FUNCTIONS; i++) code += `function f${i}(x) { let s = x; for (let j = 0; j < 3; j++) s = (s * 31 + ${i}) % 1000003; return s; }\n`;
code += `const all = [${Array.from({ length: FUNCTIONS }, (_, i) => `f${i}`).join(',')}];\n`;
code += `export default { fetch(request) { if (new URL(request.url).pathname === '/warm') { let t = 0; for (const f of all) t += f(1); return new Response(String(t)); } return new Response('ok'); } };`;

// The same functions, run by the top level instead (a load is under the startup limit, not the
// CPU limit): every request is cheap, and the cache made after the first one still holds them all.
const topLevelCode = code.replace('export default', 'for (const f of all) f(1);\nexport default');

const req = (path: string): RuntimeRequest => ({ method: 'GET', url: `http://app.test${path}`, body: null, headers: [] });

describe('platform work in an isolate is charged to no request', () => {
  let runtime: Runtime;
  beforeAll(async () => {
    runtime = await Runtime.create({ logger: captureLogger().logger, pool: { min: 1, max: 2 } });
  });
  afterAll(() => runtime.close());

  it('a request that comes while the code cache is made again is not charged its compile', async () => {
    // Limits far from anything here: this is about what the record says, not about a limit.
    const def: WorkerDefinition = { name: 'big', version: 'big-v1', main: 'worker.js', modules: [{ name: 'worker.js', type: 'esm', code }], bindings: {}, limits: { cpuMs: 30_000, startupMs: 60_000 } };
    runtime.deploy(def);
    // The first load makes the compile-time cache; the next isolate's first request is the one
    // after which the cache is made again.
    expect((await runtime.fetch('big', req('/'))).status).toBe(200);
    expect(def.codeCacheAfterRun).toBeFalsy();
    runtime.evict('big');
    const sizeBefore = def.codeCache!.get('worker.js')!.byteLength;
    const warm = await runtime.fetch('big', req('/warm'));
    expect(warm.status).toBe(200);
    // Its end scheduled the cache (setImmediate): after this turn it is being made.
    await new Promise((resolve) => setImmediate(resolve));
    const during = await runtime.fetch('big', req('/'));
    expect(during.status).toBe(200);
    // Made, and larger than the compile-time one (it holds every function '/warm' ran).
    expect(def.codeCacheAfterRun).toBe(true);
    expect(def.codeCache!.get('worker.js')!.byteLength).toBeGreaterThan(sizeBefore);
    // Before, the request made during the compile was charged it: 12-14 ms here, about a third of
    // what '/warm' used (which ran every function once; the compile serializes them all). Now it
    // is charged its own CPU: 0.19-0.28 ms here against 36-40 ms for /warm: 13x below the bound.
    expect(during.cpuMs).toBeLessThan(warm.cpuMs / 10);
  }, 120_000);

  it('the compile is not code that outlived its request: an isolate is not recycled for it', async () => {
    const captured = captureLogger();
    const own = await Runtime.create({ logger: captured.logger, pool: { min: 1, max: 2 } });
    try {
      // A CPU limit below what making its cache costs (~13 ms here), 10x what a request uses here.
      const def: WorkerDefinition = { name: 'eager', version: 'eager-v1', main: 'worker.js', modules: [{ name: 'worker.js', type: 'esm', code: topLevelCode }], bindings: {}, limits: { cpuMs: 4, startupMs: 60_000 } };
      own.deploy(def);
      expect((await own.fetch('eager', req('/'))).status).toBe(200);
      own.evict('eager');
      // This isolate's first request; after it the cache is made again.
      const first = await own.fetch('eager', req('/'));
      expect(first.status).toBe(200);
      expect(first.coldMs).not.toBeNull();
      for (let i = 0; i < 40 && !def.codeCacheAfterRun; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(def.codeCacheAfterRun).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 200)); // the idle watch's readings
      const next = await own.fetch('eager', req('/'));
      expect(next.status).toBe(200);
      // Still the same isolate (warm), and nothing blamed on the worker.
      expect(next.coldMs).toBeNull();
      expect(captured.logs.filter((l) => /outside any request/.test(String(l.msg)))).toEqual([]);
    } finally {
      await own.close();
    }
  }, 120_000);
});
