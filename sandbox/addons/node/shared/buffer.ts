// node:buffer as the nodejs-compat add-on installed it, for add-ons that extend it (nodejs-stream,
// nodejs-assert): their npm code gets the same Buffer class (scripts/node-compat-aliases.mjs).
import { builtinNamespace } from '../../../addons.js';

const ns = builtinNamespace('node:buffer') as Record<string, unknown> | undefined;
if (!ns) throw new Error('cinder: this add-on needs nodejs-compat installed first');
export const Buffer = ns.Buffer;
export const SlowBuffer = ns.SlowBuffer;
export const kMaxLength = ns.kMaxLength;
export const constants = ns.constants;
export const INSPECT_MAX_BYTES = ns.INSPECT_MAX_BYTES;
export default ns.default;
