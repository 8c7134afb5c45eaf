// The guest half of KV bindings (bindings/kv/guest.ts registers the kv_namespace binding type
// when evaluated): installed only in isolates of workers bound to a KV namespace.
import '../../bindings/kv/guest.js';

export default function install() {
  return {};
}
