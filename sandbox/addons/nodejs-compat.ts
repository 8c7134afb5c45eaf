// The Node.js built-in modules of `nodejs_compat` (the list: protocol/node-modules.ts), each
// under `node:<name>` and `<name>`. Built on well-kept npm ports where they exist (buffer,
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
import { streamNamespace, streamPromisesNamespace, streamWebNamespace } from './node/stream.js';
import { assertNamespace, assertStrictNamespace } from './node/assert.js';
import type { AddonExports } from '../../protocol/addons.js';
import type { NodeModuleName } from '../../protocol/node-modules.js';

export default function install(): AddonExports {
  const processNamespace: Record<string, unknown> = { default: process };
  for (const key of ['env', 'nextTick', 'version', 'versions', 'platform', 'arch', 'cwd', 'hrtime', 'argv', 'emitWarning', 'exit', 'release', 'features']) {
    processNamespace[key] = (process as unknown as Record<string, unknown>)[key];
  }
  const byName: Record<NodeModuleName, object> = {
    assert: assertNamespace(),
    'assert/strict': assertStrictNamespace(),
    async_hooks: asyncHooks,
    buffer,
    crypto,
    events,
    path,
    'path/posix': path,
    process: processNamespace,
    stream: streamNamespace(),
    'stream/promises': streamPromisesNamespace(),
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
