import { build } from 'esbuild';
const files = ['buffer', 'events', 'string-decoder', 'path', 'url', 'util', 'util-types', 'crypto', 'async-hooks', 'stream-web'];
for (const f of files) {
  const r = await build({ entryPoints: [`sandbox/addons/node/${f}.ts`], bundle: false, write: false, metafile: true, format: 'esm', logLevel: 'error' });
  const out = Object.values(r.metafile.outputs)[0];
  console.log(f, JSON.stringify(out.exports));
}
