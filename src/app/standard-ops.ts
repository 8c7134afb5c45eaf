// The host operations every Cinder server offers its workers, whatever else it binds: outbound
// fetch under the server's address policy, crypto.subtle, and compression streams. (Bindings such as KV and services register their own.)
import { cryptoOp } from '../../bindings/crypto/host.js';
import { compressionOp } from '../../bindings/compression/host.js';
import { createFetchOps, type FetchPolicy } from '../../bindings/fetch/host.js';
import type { Runtime } from '../runtime/runtime.js';
import { OPS } from '../../protocol/wall.js';

export function installStandardOps(runtime: Runtime, policy: FetchPolicy): () => Promise<void> {
  const fetchOps = createFetchOps(policy);
  runtime.registerOp(OPS.fetch, fetchOps.fetch);
  runtime.registerOp(OPS.fetchAbort, fetchOps.abort);
  runtime.registerOp(OPS.crypto, cryptoOp);
  runtime.registerOp(OPS.compression, compressionOp);
  return fetchOps.close;
}
