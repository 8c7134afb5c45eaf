// The D1 add-on: the guest half of `d1` bindings (bindings/d1/guest.ts), installed only in
// isolates whose worker has one (protocol/addons.ts).
import { registerBinding } from '../env.js';
import { makeD1Binding } from '../../bindings/d1/guest.js';
import type { AddonExports } from '../../protocol/addons.js';

export default function install(): AddonExports {
  registerBinding('d1', (name) => makeD1Binding(name));
  return {};
}
