// The Node.js built-in modules of `nodejs_compat` (the list: protocol/node-modules.ts), each
// under `node:<name>` and `<name>`, but node:stream and node:assert (nodejs-stream.ts,
// nodejs-assert.ts: the two largest, installed only when imported). Built on well-kept npm ports where they exist (buffer,
// events, string_decoder, readable-stream, pathe, assert), the rest written here (sandbox/addons/
// node/). The globals (`Buffer`, `process`) and process.env come from the add-ons that need this
// one (nodejs-compat-globals.ts, nodejs-process-env.ts), as the compatibility flags and date say.
import * as buffer from './node/buffer.js';
import * as events from './node/events.js';
import * as stringDecoder from './node/string-decoder.js';
import * as path from './node/path.js';
import * as url from './node/url.js';
import * as util from './node/util.js';
import * as utilTypes from './node/util-types.js';
import * as crypto from './node/crypto.js';
import * as asyncHooks from './node/async-hooks.js';
import { process } from './node/process.js';
import { streamWebNamespace } from './node/stream-web.js';
import type { AddonExports } from '../../protocol/addons.js';
import type { NodeModuleName, SEPARATE_NODE_MODULES } from '../../protocol/node-modules.js';

type CompatModuleName = Exclude<NodeModuleName, keyof typeof SEPARATE_NODE_MODULES>;

export default function install(): AddonExports {
  const processNamespace: Record<string, unknown> = { default: process };
  for (const key of ['env', 'nextTick', 'version', 'versions', 'platform', 'arch', 'cwd', 'hrtime', 'argv', 'emitWarning', 'exit', 'release', 'features']) {
    processNamespace[key] = (process as unknown as Record<string, unknown>)[key];
  }
  const byName: Record<CompatModuleName, object> = {
    async_hooks: asyncHooks,
    buffer,
    crypto,
    events,
    path,
    'path/posix': path,
    process: processNamespace,
    'stream/web': streamWebNamespace(),
    string_decoder: stringDecoder,
    url,
    util,
    'util/types': { ...utilTypes, default: utilTypes },
  };
  const modules: Record<string, object> = {};
  for (const [name, namespace] of Object.entries(byName)) {
    modules[`node:${name}`] = namespace;
    modules[name] = namespace;
  }
  return { modules };
}
