// KV in `cinder serve` as a whole: the kv.* ops for workers, the admin routes under /kv
// (control/kv-routes.ts), and the storage (Redis if given, else <data>/kv.sqlite).
import { createKVService, installKV, type KVService, type KVServiceOptions } from '../../bindings/kv/index.js';
import { kvRoutes } from '../control/kv-routes.js';
import type { ServeExtension } from './serve.js';

export interface KVServeOptions {
  /** Redis URL (`cinder serve --redis`): namespaces shared by every node */
  redis?: string;
  /** service settings (read cache bounds, minimum TTL, ...) */
  service?: Omit<KVServiceOptions, 'backend'>;
}

/** KV for `cinder serve`: storage under --data (or Redis), ops for workers, /kv admin routes. */
export function kvServeExtension(options: KVServeOptions = {}): ServeExtension & { service(): KVService | null } {
  let kv: KVService | null = null;
  return {
    name: 'kv',
    service: () => kv,
    setup({ runtime, dataDir, logger, scale }) {
      const service = createKVService(options.redis ? { redis: options.redis } : { data: dataDir }, {
        onSweepError: (error) => logger.warn({ err: String(error) }, 'KV: purging expired keys failed'),
        // A write here drops the cached read of the key in every other process and node.
        onWrite: scale ? (namespace, key) => scale.kvWritten(namespace, key) : undefined,
        ...options.service,
      });
      scale?.onKvInvalidate((namespace, key) => service.dropCached(namespace, key));
      kv = service;
      installKV(runtime, service);
      logger.info({ kv: service.backend.kind }, `KV namespaces in ${options.redis ? 'Redis' : `${dataDir}/kv.sqlite`}`);
      return { adminRoutes: [{ path: '/kv', app: kvRoutes(service) }], close: () => service.close() };
    },
  };
}
