import { build } from 'esbuild';
import { nodeCompatAliases } from '../scripts/node-compat-aliases.mjs';
const files = ['buffer', 'events', 'string-decoder', 'path', 'url', 'util', 'util-types', 'crypto', 'process', 'stream-web'];
for (const f of files) {
  const r = await build({ entryPoints: [`sandbox/addons/node/${f}.ts`], bundle: true, write: false, format: 'esm', platform: 'neutral', mainFields: ['module','main'], logLevel: 'error',
    plugins: [{ name: 'aliases', setup(b) { nodeCompatAliases.setup(new Proxy(b, { get: (t, k) => (k === 'initialOptions' ? { entryPoints: ['/x/addons/nodejs-compat.ts'] } : typeof t[k] === 'function' ? t[k].bind(t) : t[k]) })); } }, { name: 'base', setup(b) { b.onResolve({ filter: /\.\.\/\.\.\/(api|async-context|env|addons)/ }, (a) => ({ path: a.path, namespace: 'stub' })); b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'export const inspect = () => ""; export const format = () => ""; export const customInspectSymbol = Symbol(); export function builtinNamespace() {}; export function onTextBindings() {}', loader: 'js' })); } }] });
  const code = r.outputFiles[0].text;
  const t = performance.now();
  await import('data:text/javascript;base64,' + Buffer.from(code).toString('base64'));
  console.log(f.padEnd(16), (code.length / 1024).toFixed(1).padStart(6), 'KiB', (performance.now() - t).toFixed(2), 'ms');
}
