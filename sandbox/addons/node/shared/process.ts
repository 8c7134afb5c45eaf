// node:process as the nodejs-compat add-on installed it (see buffer.ts here).
import { builtinNamespace } from '../../../addons.js';

const ns = builtinNamespace('node:process') as Record<string, unknown> | undefined;
if (!ns) throw new Error('cinder: this add-on needs nodejs-compat installed first');
export const process = ns.default;
export default ns.default;
