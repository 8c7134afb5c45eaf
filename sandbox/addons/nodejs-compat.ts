// The Node.js built-in modules of `nodejs_compat` (the list: protocol/node-modules.ts), each
// under `node:<name>` and `<name>`, but node:stream, node:assert and node:crypto (nodejs-stream.ts,
// nodejs-assert.ts, nodejs-crypto.ts: the largest, installed only when imported). Built on well-kept npm ports
// where they exist (buffer, events, string_decoder, pathe, assert's deep equality), the rest
// written here (sandbox/addons/node/). The globals (`Buffer`, `process`) and process.env come from
// the add-ons that need this one (nodejs-compat-globals.ts, nodejs-process-env.ts), as the
// compatibility flags and date say.
//
// A module is evaluated only when a worker's import reads it (its namespace is getters): a worker
// importing node:crypto does not pay for node:url. esbuild wraps each `require`d module in a lazy
// initializer, which is what makes that possible here.
import { EXPORT_NAMES } from './node/export-names.js';
import { streamWebNamespace } from './node/stream-web.js';
import type { AddonExports } from '../../protocol/addons.js';
import type { NodeModuleName, SEPARATE_NODE_MODULES } from '../../protocol/node-modules.js';

declare const require: (path: string) => Record<string, unknown>;

type CompatModuleName = Exclude<NodeModuleName, keyof typeof SEPARATE_NODE_MODULES>;

/** A namespace whose exports are read from `load()` (called once, on the first read). */
function lazyNamespace(names: readonly string[], load: () => Record<string, unknown>): object {
  let loaded: Record<string, unknown> | null = null;
  const namespace = {};
  for (const name of names) {
    Object.defineProperty(namespace, name, { enumerable: true, get: () => (loaded ??= load())[name] });
  }
  return namespace;
}

const PROCESS_EXPORTS = ['env', 'nextTick', 'version', 'versions', 'platform', 'arch', 'cwd', 'hrtime', 'argv', 'emitWarning', 'exit', 'release', 'features'];

export default function install(): AddonExports {
  const buffer = lazyNamespace(EXPORT_NAMES.buffer, () => require('./node/buffer.js'));
  const path = lazyNamespace(EXPORT_NAMES.path, () => require('./node/path.js'));
  const utilTypes = lazyNamespace([...EXPORT_NAMES['util-types'], 'default'], () => {
    const types = require('./node/util-types.js');
    return { ...types, default: types };
  });
  const processNamespace = lazyNamespace([...PROCESS_EXPORTS, 'default'], () => {
    const process = require('./node/process.js').process as Record<string, unknown>;
    const namespace: Record<string, unknown> = { default: process };
    for (const key of PROCESS_EXPORTS) namespace[key] = process[key];
    return namespace;
  });
  const byName: Record<CompatModuleName, object> = {
    async_hooks: lazyNamespace(EXPORT_NAMES['async-hooks'], () => require('./node/async-hooks.js')),
    buffer,
    events: lazyNamespace(EXPORT_NAMES.events, () => require('./node/events.js')),
    path,
    'path/posix': path,
    process: processNamespace,
    'stream/web': streamWebNamespace(),
    string_decoder: lazyNamespace(EXPORT_NAMES['string-decoder'], () => require('./node/string-decoder.js')),
    url: lazyNamespace(EXPORT_NAMES.url, () => require('./node/url.js')),
    util: lazyNamespace(EXPORT_NAMES.util, () => require('./node/util.js')),
    'util/types': utilTypes,
  };
  const modules: Record<string, object> = {};
  for (const [name, namespace] of Object.entries(byName)) {
    modules[`node:${name}`] = namespace;
    modules[name] = namespace;
  }
  return { modules };
}
