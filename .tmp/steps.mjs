import { join } from 'node:path';
import { readFileSync } from 'node:fs';
const root = '/work/wt-node';
const dist = (p) => import(join(root, 'dist', 'src', p));
const { Runtime } = await dist('runtime/runtime.js');
const { createLogger } = await dist('observability/logger.js');
const ivm = (await import('isolated-vm')).default;
const runtime = await Runtime.create({ logger: createLogger({ level: 'warn' }), pool: { min: 3, max: 3 } });
const code = readFileSync(join(root, 'dist/addons/nodejs-compat.js'), 'utf8');
let cache;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (let i = 0; i < 8; i++) {
  while (runtime.pool.stats().ready < 2) await sleep(2);
  const ready = await runtime.pool.take(128);
  const t0 = performance.now();
  const script = await ready.isolate.compileScript(code, { filename: 'x.js', ...(cache ? { cachedData: cache } : { produceCachedData: true }) });
  if (!cache) cache = script.cachedData;
  const t1 = performance.now();
  const wrapper = await script.run(ready.context, { reference: true });
  const t2 = performance.now();
  // evaluate the add-on body and install() separately
  await ready.context.evalClosure(`globalThis.__t = $0.derefInto ? 0 : 0;`, [0]);
  const r = await ready.entry.installAddon.apply(undefined, [wrapper.derefInto(), 'nodejs-compat'], {});
  const t3 = performance.now();
  console.log(`compile ${(t1 - t0).toFixed(2)} run ${(t2 - t1).toFixed(2)} install ${(t3 - t2).toFixed(2)} rejected=${script.cachedDataRejected}`);
  ready.dispose('x');
}
process.exit(0);
