// process.env filled from the worker's text bindings (vars and secrets), as workerd does under
// nodejs_compat from compatibility date 2025-04-01 or with nodejs_compat_populate_process_env.
// The bindings reach the isolate when the worker is installed, after its top level has run: a
// read of process.env at the top level sees it empty (workerd fills it before).
import { builtinNamespace } from '../addons.js';
import { onTextBindings } from '../env.js';
import type { AddonExports } from '../../protocol/addons.js';

export default function install(): AddonExports {
  const process = builtinNamespace('node:process') as { default: { env: Record<string, string> } } | undefined;
  if (!process) throw new Error('cinder: nodejs-process-env needs the nodejs-compat add-on installed first');
  const env = process.default.env;
  onTextBindings((text) => {
    for (const key of Object.keys(env)) delete env[key];
    Object.assign(env, text);
  });
  return {};
}
