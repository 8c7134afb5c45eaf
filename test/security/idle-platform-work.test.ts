// The idle watch (worker-instance.ts watchIdle) ends an isolate whose CPU clock moves past one CPU
// limit with nothing of it in flight: the worker's code outliving its request. The platform's own
// work there is not that: after a version's first request on an isolate, its code cache is made
// again in the isolate (worker-loader.ts cacheAfterRun: compiled on its thread, ~10 ms for this
// worker here). A worker whose CPU limit is below that must not be recycled for it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { captureLogger } from '../helpers/server.js';
import { Runtime } from '../../src/runtime/runtime.js';
import type { WorkerDefinition } from '../../src/model/worker-definition.js';
import type { RuntimeRequest } from '../../src/runtime/contract.js';

// Many functions, all run by the top level (under the startup limit, not the CPU limit): every
// request is cheap, and the cache made after the first one holds them all.
const FUNCTIONS = 8000;
let code = '';
for (let i = 0; i < FUNCTIONS; i++) code += `function f${i}(x) { let s = x; for (let j = 0; j < 3; j++) s = (s * 31 + ${i}) % 1000003; return s; }\n`;
code += `const all = [${Array.from({ length: FUNCTIONS }, (_, i) => `f${i}`).join(',')}];\nfor (const f of all) f(1);\n`;
code += `export default { fetch() { return new Response('ok'); } };`;

const req = (path: string): RuntimeRequest => ({ method: 'GET', url: `http://app.test${path}`, body: null, headers: [] });
const captured = captureLogger();
let runtime: Runtime;

beforeAll(async () => {
  runtime = await Runtime.create({ logger: captured.logger, pool: { min: 1, max: 2 } });
});
afterAll(() => runtime.close());

it('does not recycle an isolate for the code cache it compiles after a first request, at a CPU limit below that compile', async () => {
  const def: WorkerDefinition = { name: 'eager', version: 'eager-v1', main: 'worker.js', modules: [{ name: 'worker.js', type: 'esm', code }], bindings: {}, limits: { cpuMs: 4, startupMs: 60_000 } };
  runtime.deploy(def);
  // The first load makes the compile-time cache; the cache is made again after the next isolate's first request.
  expect((await runtime.fetch('eager', req('/'))).status).toBe(200);
  runtime.evict('eager');
  const first = await runtime.fetch('eager', req('/'));
  expect(first.status).toBe(200);
  expect(first.coldMs).not.toBeNull();
  for (let i = 0; i < 400 && !def.codeCacheAfterRun; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  expect(def.codeCacheAfterRun).toBe(true);
  await new Promise((resolve) => setTimeout(resolve, 500)); // the idle watch's readings
  const next = await runtime.fetch('eager', req('/'));
  expect(next.status).toBe(200);
  // still the same isolate (warm), and nothing blamed on the worker
  expect(next.coldMs).toBeNull();
  expect(captured.logs.filter((line) => /outside any request/.test(String(line.msg)))).toEqual([]);
}, 120_000);
