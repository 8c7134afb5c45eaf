// node:async_hooks alone, for the `nodejs_als` flag (workerd's AsyncLocalStorage without the rest
// of nodejs_compat). The classes are the base sandbox's (sandbox/async-context.ts), so a worker
// with both flags sees one AsyncLocalStorage.
import * as asyncHooks from './node/async-hooks.js';
import type { AddonExports } from '../../protocol/addons.js';

export default function install(): AddonExports {
  return { modules: { 'node:async_hooks': asyncHooks, async_hooks: asyncHooks } };
}
