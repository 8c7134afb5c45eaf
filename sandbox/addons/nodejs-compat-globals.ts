// The globals nodejs_compat_v2 adds (nodejs_compat from compatibility date 2024-09-23): `Buffer`
// and `process`, the same objects node:buffer and node:process export (from nodejs-compat, which
// this add-on needs, so it is installed first).
import { builtinNamespace } from '../addons.js';
import type { AddonExports } from '../../protocol/addons.js';

export default function install(): AddonExports {
  const buffer = builtinNamespace('node:buffer') as { Buffer: unknown } | undefined;
  const process = builtinNamespace('node:process') as { default: unknown } | undefined;
  if (!buffer || !process) throw new Error('cinder: nodejs-compat-globals needs the nodejs-compat add-on installed first');
  return { globals: { Buffer: buffer.Buffer, process: process.default } };
}
