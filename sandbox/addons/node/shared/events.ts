// node:events as the nodejs-compat add-on installed it (see buffer.ts here).
import { builtinNamespace } from '../../../addons.js';

const ns = builtinNamespace('node:events') as Record<string, unknown> | undefined;
if (!ns) throw new Error('cinder: this add-on needs nodejs-compat installed first');
const EventEmitter = ns.EventEmitter;
export { EventEmitter };
export const once = ns.once;
export const on = ns.on;
export const addAbortListener = ns.addAbortListener;
export const getEventListeners = ns.getEventListeners;
export default EventEmitter;
