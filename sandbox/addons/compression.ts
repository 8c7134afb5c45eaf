// CompressionStream and DecompressionStream (bindings/compression): an add-on, as most workers
// never use them.
import { CompressionStream, DecompressionStream } from '../../bindings/compression/guest.js';

export default function install() {
  return { globals: { CompressionStream, DecompressionStream } };
}
