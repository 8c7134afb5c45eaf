// node:stream and node:stream/promises (readable-stream, the npm mirror of Node's streams): kept
// apart from nodejs-compat because it is the largest part and fewer workers import it. Its
// Buffer, EventEmitter, StringDecoder and process are nodejs-compat's (needed first).
import { streamNamespace, streamPromisesNamespace } from './node/stream.js';
import type { AddonExports } from '../../protocol/addons.js';

export default function install(): AddonExports {
  const stream = streamNamespace();
  const promises = streamPromisesNamespace();
  return { modules: { 'node:stream': stream, stream, 'node:stream/promises': promises, 'stream/promises': promises } };
}
