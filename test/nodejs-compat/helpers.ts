// Bundling a worker the way wrangler does under nodejs_compat: npm code is bundled in, Node's
// built-in modules (node:* and their bare names) stay imports the runtime resolves.
import { build } from 'esbuild';
import { NODE_MODULES, REFUSED_NODE_MODULES } from '../../protocol/node-modules.js';

const builtins = [...NODE_MODULES, ...Object.keys(REFUSED_NODE_MODULES)];
export const NODE_EXTERNALS = ['node:*', ...builtins];

export async function bundleWorker(source: string, resolveDir: string): Promise<string> {
  const result = await build({
    stdin: { contents: source, resolveDir, loader: 'js', sourcefile: 'worker.js' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    external: NODE_EXTERNALS,
    logLevel: 'error',
  });
  return result.outputFiles[0].text;
}
