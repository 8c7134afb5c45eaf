// node:string_decoder as the nodejs-compat add-on installed it (see buffer.ts here).
import { builtinNamespace } from '../../../addons.js';

const ns = builtinNamespace('node:string_decoder') as Record<string, unknown> | undefined;
if (!ns) throw new Error('cinder: this add-on needs nodejs-compat installed first');
export const StringDecoder = ns.StringDecoder;
export default ns.default;
