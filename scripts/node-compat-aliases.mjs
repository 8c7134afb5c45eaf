// The esbuild plugin that wires the npm ports behind node:* (sandbox/addons/nodejs-*.ts) to each
// other and to the sandbox, so one add-on holds one Buffer, one EventEmitter, one process:
//   readable-stream        -> its browser entry (the Node entry requires Node's own 'stream')
//   process/ (readable-stream's nextTick) -> node:process (sandbox/addons/node/process.ts)
//   util, util/ (assert's inspect and types) -> the sandbox's inspect and node:util/types
//   abort-controller       -> the sandbox's globals (readable-stream requires it only without them)
// Only for the nodejs-* add-ons: another add-on importing 'util' gets npm's as usual.
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const node = join(root, 'sandbox', 'addons', 'node');

export const nodeCompatAliases = {
  name: 'cinder-node-compat-aliases',
  setup(b) {
    const entries = [].concat(b.initialOptions.entryPoints ?? []).map(String);
    if (!entries.some((entry) => /[\\/]addons[\\/]nodejs-[^\\/]*\.ts$/.test(entry))) return;
    b.onResolve({ filter: /^readable-stream$/ }, () => ({ path: join(dirname(require.resolve('readable-stream/package.json')), 'lib', 'ours', 'browser.js') }));
    b.onResolve({ filter: /^process\/?$/ }, () => ({ path: join(node, 'process.ts') }));
    b.onResolve({ filter: /^util\/?$/ }, () => ({ path: join(node, 'util-for-assert.ts') }));
    b.onResolve({ filter: /^abort-controller$/ }, () => ({ path: 'abort-controller', namespace: 'cinder-node-globals' }));
    b.onLoad({ filter: /.*/, namespace: 'cinder-node-globals' }, () => ({
      contents: 'module.exports = { AbortController: globalThis.AbortController, AbortSignal: globalThis.AbortSignal };',
      loader: 'js',
    }));
  },
};
