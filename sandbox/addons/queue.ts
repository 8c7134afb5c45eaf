// The Queues add-on: the guest half of `queue` producer bindings (bindings/queues/guest.ts),
// installed only in isolates whose worker has one (protocol/addons.ts).
import { registerBinding } from '../env.js';
import { makeQueueBinding } from '../../bindings/queues/guest.js';
import type { AddonExports } from '../../protocol/addons.js';

export default function install(): AddonExports {
  registerBinding('queue', (name) => makeQueueBinding(name));
  return {};
}
