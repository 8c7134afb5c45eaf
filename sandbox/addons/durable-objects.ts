// Durable Objects (bindings/durable-objects/guest.ts): the durable_object_namespace binding, and the
// events of the object an isolate hosts. Installed only in isolates of workers bound to a
// namespace, and in the isolates that host objects (protocol/addons.ts).
import { installDurableObjects, WebSocketRequestResponsePair } from '../../bindings/durable-objects/guest.js';

export default function install() {
  installDurableObjects();
  return { globals: { WebSocketRequestResponsePair } };
}
