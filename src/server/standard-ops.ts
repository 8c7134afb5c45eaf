// The host operations every Cinder server offers its workers, whatever else it binds: outbound
// fetch under the server's address policy, and crypto.subtle. (Bindings such as KV and services register their own.)
import { cryptoOp } from '../../bindings/crypto/host.js';
import { createFetchOps, type FetchPolicy } from '../../bindings/fetch/host.js';
import type { Runtime } from '../runtime/runtime.js';

export function installStandardOps(runtime: Runtime, policy: FetchPolicy): () => Promise<void> {
  const fetchOps = createFetchOps(policy);
  runtime.registerOp('fetch', fetchOps.fetch);
  runtime.registerOp('fetch.abort', fetchOps.abort);
  runtime.registerOp('crypto', cryptoOp);
  return fetchOps.close;
}
