// Bundles the bench workers with esbuild into bench/.build/ (ignored by git):
//   hono-app.mjs     ES module (Cinder, workerd)       ~1 MB: Hono + highlight.js, all grammars
//   hono-app-sw.js   classic script (edge-runtime)
//   hono-example.mjs examples/hono-app.ts as `cinder deploy`/wrangler would bundle it (warm bench)
//   api-worker.mjs   ES module (Cinder, workerd)      ~100 KB: Hono + middleware, 40 routes, zod, jose
// and copies the hello workers there, so that workerd's config can embed them all from one place.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { benchDir } from './procs.mjs';

export const buildDir = join(benchDir, '.build');

const common = {
  bundle: true,
  write: true,
  platform: 'browser',
  target: 'es2022',
  conditions: ['workerd', 'worker', 'browser'],
  logLevel: 'warning',
  // Minified as `wrangler deploy --minify` would ship it (identifiers kept, so stack traces read).
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
};

export async function buildWorkers() {
  mkdirSync(buildDir, { recursive: true });
  await build({ ...common, entryPoints: [join(benchDir, 'workers', 'hono-app.js')], outfile: join(buildDir, 'hono-app.mjs'), format: 'esm' });
  await build({ ...common, entryPoints: [join(benchDir, 'workers', 'hono-app-sw.js')], outfile: join(buildDir, 'hono-app-sw.js'), format: 'iife' });
  await build({ ...common, entryPoints: [join(benchDir, '..', 'examples', 'hono-app.ts')], outfile: join(buildDir, 'hono-example.mjs'), format: 'esm' });
  await build({ ...common, entryPoints: [join(benchDir, 'workers', 'api-worker.js')], outfile: join(buildDir, 'api-worker.mjs'), format: 'esm' });
  copyFileSync(join(benchDir, 'workers', 'hello.js'), join(buildDir, 'hello.mjs'));
  copyFileSync(join(benchDir, 'workers', 'hello-sw.js'), join(buildDir, 'hello-sw.js'));
  const read = (name) => readFileSync(join(buildDir, name), 'utf8');
  return {
    hello: { esm: read('hello.mjs'), sw: read('hello-sw.js') },
    hono: { esm: read('hono-app.mjs'), sw: read('hono-app-sw.js'), bytes: statSync(join(buildDir, 'hono-app.mjs')).size },
    api: { esm: read('api-worker.mjs'), bytes: statSync(join(buildDir, 'api-worker.mjs')).size },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const built = await buildWorkers();
  console.log(`hono-app.mjs: ${(built.hono.bytes / 1024).toFixed(0)} KiB, api-worker.mjs: ${(built.api.bytes / 1024).toFixed(0)} KiB`);
}
