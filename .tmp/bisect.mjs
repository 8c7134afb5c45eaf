import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { buildAddon } from '../scripts/build-addons.mjs';
const root = '/work/wt-node';
const dist = (p) => import(join(root, 'dist', 'src', p));
const { Runtime } = await dist('runtime/runtime.js');
const { createLogger } = await dist('observability/logger.js');
const runtime = await Runtime.create({ logger: createLogger({ level: 'warn' }), pool: { min: 3, max: 3 } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (const m of (process.argv[2] ?? 'empty,npmbuffer,buffer,crypto,process,util-types').split(',')) {
  const out = `/tmp/bisect-${m}.js`;
  await buildAddon(join(root, '.tmp/entries', `nodejs-${m}.ts`), out);
  const code = readFileSync(out, 'utf8');
  let cache; const times = [];
  for (let i = 0; i < 7; i++) {
    while (runtime.pool.stats().ready < 2) await sleep(2);
    const ready = await runtime.pool.take(128);
    const script = await ready.isolate.compileScript(code, { filename: 'x.js', ...(cache ? { cachedData: cache } : { produceCachedData: true }) });
    if (!cache) cache = script.cachedData;
    const wrapper = await script.run(ready.context, { reference: true });
    const t2 = performance.now();
    await ready.entry.installAddon.apply(undefined, [wrapper.derefInto(), m], {});
    if (i > 0) times.push(performance.now() - t2);
    ready.dispose('x');
  }
  times.sort((a, b) => a - b);
  console.log(m.padEnd(16), (code.length / 1024).toFixed(1).padStart(6), 'KiB  install p50', times[3].toFixed(2), 'ms');
}
process.exit(0);
