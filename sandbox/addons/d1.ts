// The D1 add-on: the guest half of `d1` bindings (bindings/d1/guest.ts), installed in isolates
// whose worker has one.
import { registerBinding } from '../env.js';
import { makeD1Binding } from '../../bindings/d1/guest.js';

export default function install(): { globals?: Record<string, unknown>; modules?: Record<string, object> } {
  registerBinding('d1', (name) => makeD1Binding(name));
  return {};
}
