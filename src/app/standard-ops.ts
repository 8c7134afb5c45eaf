// The host operations every Cinder server offers its workers, whatever else it binds: outbound
// fetch under the server's address policy, crypto.subtle, and compression streams. (Bindings such as KV and services register their own.)
import { cryptoOp } from '../../bindings/crypto/host.js';
import { compressionOp } from '../../bindings/compression/host.js';
import { createFetchOps, type FetchPolicy } from '../../bindings/fetch/host.js';
import type { Runtime } from '../runtime/runtime.js';

export function installStandardOps(runtime: Runtime, policy: FetchPolicy): () => Promise<void> {
  const fetchOps = createFetchOps(policy);
  runtime.registerOp('fetch', fetchOps.fetch);
  runtime.registerOp('fetch.abort', fetchOps.abort);
  runtime.registerOp('crypto', cryptoOp);
  runtime.registerOp('compression', compressionOp);
  return fetchOps.close;
}
