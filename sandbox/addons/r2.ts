// The R2 add-on: the guest half of `r2_bucket` bindings (bindings/r2/guest.ts), installed only in
// isolates whose worker has one (protocol/addons.ts).
import { registerBinding } from '../env.js';
import { makeR2Binding } from '../../bindings/r2/guest.js';
import type { AddonExports } from '../../protocol/addons.js';

export default function install(): AddonExports {
  registerBinding('r2_bucket', (name) => makeR2Binding(name));
  return {};
}
