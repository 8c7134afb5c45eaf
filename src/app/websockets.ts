// WebSockets for a server: the host half (bindings/websocket/host.ts) with its ops registered, and
// outbound connections under the same address policy as outbound fetch (the operator's allowance).
import { WebSocketHost, type WebSocketBounds } from '../../bindings/websocket/host.js';
import { parseAllowance, type PrivateAllowance } from '../../bindings/fetch/address-policy.js';
import { checkTarget, policyLookup } from '../../bindings/fetch/targets.js';
import type { Runtime } from '../runtime/runtime.js';

export function installWebSockets(runtime: Runtime, options: { allowPrivate: PrivateAllowance; bounds?: Partial<WebSocketBounds> }): WebSocketHost {
  const allowance = parseAllowance(options.allowPrivate);
  const host = new WebSocketHost({ bounds: options.bounds, outbound: { check: (url) => checkTarget(url, allowance), lookup: policyLookup(allowance) } });
  for (const [op, handler] of Object.entries(host.ops())) runtime.registerOp(op, handler);
  return host;
}
