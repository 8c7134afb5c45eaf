// The esbuild plugin that wires the npm ports behind node:* (sandbox/addons/nodejs-*.ts) to each
// other and to the sandbox, so a worker's isolate holds one Buffer, one EventEmitter, one process:
//   readable-stream        -> its browser entry (the Node entry requires Node's own 'stream')
//   util, util/ (assert's inspect and types) -> the sandbox's inspect and node:util/types
//   abort-controller       -> the sandbox's globals (readable-stream requires it only without them)
//   object-is, is-nan, object.assign/polyfill, object-is/polyfill, call-bind/callBound
//                          -> the built-ins they polyfill (assert requires them; V8 has them all,
//                             and the shims bring ~25 KB of get-intrinsic and friends)
// and, in the add-ons that extend nodejs-compat (nodejs-stream, nodejs-assert, nodejs-crypto), buffer, events,
// string_decoder and process -> what nodejs-compat installed (sandbox/addons/node/shared/).
// Only for the nodejs-* add-ons: another add-on importing 'util' gets npm's as usual.
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const node = join(root, 'sandbox', 'addons', 'node');
// Each shim is what the package exports, from the built-ins (taken when the add-on is evaluated,
// before worker code runs).
const BUILT_INS = {
  'abort-controller': 'module.exports = { AbortController: globalThis.AbortController, AbortSignal: globalThis.AbortSignal };',
  'object-is': 'module.exports = Object.is;',
  'is-nan': 'module.exports = Number.isNaN;',
  'object.assign/polyfill': 'module.exports = () => Object.assign;',
  'object-is/polyfill': 'module.exports = () => Object.is;',
  // callBound('RegExp.prototype.test') -> RegExp.prototype.test, callable with `this` first
  'call-bind/callBound': `module.exports = (name) => {
    const path = name.replace(/^%|%$/g, '').split('.');
    let value = globalThis;
    for (const key of path) value = value[key];
    if (typeof value !== 'function') throw new TypeError('cinder: callBound(' + name + ') is not a function');
    return Function.prototype.call.bind(value);
  };`,
};
const EXTENDS_COMPAT = /[\\/]addons[\\/]nodejs-(stream|assert|crypto)\.ts$/;

export const nodeCompatAliases = {
  name: 'cinder-node-compat-aliases',
  setup(b) {
    const entries = [].concat(b.initialOptions.entryPoints ?? []).map(String);
    if (!entries.some((entry) => /[\\/]addons[\\/]nodejs-[^\\/]*\.ts$/.test(entry))) return;
    b.onResolve({ filter: /^readable-stream$/ }, () => ({ path: join(dirname(require.resolve('readable-stream/package.json')), 'lib', 'ours', 'browser.js') }));
    b.onResolve({ filter: /^util\/?$/ }, () => ({ path: join(node, 'util-for-assert.ts') }));
    b.onResolve({ filter: /^(abort-controller|object-is|is-nan|object\.assign\/polyfill|object-is\/polyfill|call-bind\/callBound)$/ }, (args) => ({ path: args.path, namespace: 'cinder-node-builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'cinder-node-builtin' }, (args) => ({ contents: BUILT_INS[args.path], loader: 'js' }));
    if (entries.some((entry) => EXTENDS_COMPAT.test(entry))) {
      const shared = join(node, 'shared');
      b.onResolve({ filter: /^(buffer|safe-buffer)\/?$/ }, () => ({ path: join(shared, 'buffer.ts') }));
      b.onResolve({ filter: /^events\/?$/ }, () => ({ path: join(shared, 'events.ts') }));
      b.onResolve({ filter: /^string_decoder\/?$/ }, () => ({ path: join(shared, 'string-decoder.ts') }));
      b.onResolve({ filter: /^process\/?$/ }, () => ({ path: join(shared, 'process.ts') }));
      // our own node:* modules (crypto.ts) importing node:buffer's implementation directly
      b.onResolve({ filter: /^\.\/buffer\.js$/ }, (args) => (args.importer.startsWith(node + '/') || args.importer.startsWith(node + '\\') ? { path: join(shared, 'buffer.ts') } : undefined));
    } else {
      b.onResolve({ filter: /^process\/?$/ }, () => ({ path: join(node, 'process.ts') }));
    }
  },
};
