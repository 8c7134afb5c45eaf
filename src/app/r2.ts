// R2 in `cinder serve`: the r2.* ops for workers, the admin routes under /r2
// (control/r2-routes.ts), on the store under <data>/r2 (content-addressed blobs and a SQLite
// metadata file).
import { installR2, R2Store, type R2HostOptions, type R2StoreOptions } from '../../bindings/r2/index.js';
import { join } from 'node:path';
import type { ServeExtension } from './serve.js';
import { r2Routes } from '../control/r2-routes.js';

export interface R2ServeOptions {
  store?: Omit<R2StoreOptions, 'root'>;
  host?: R2HostOptions;
}

export function r2ServeExtension(options: R2ServeOptions = {}): ServeExtension & { store(): R2Store | null } {
  let r2: R2Store | null = null;
  return {
    name: 'r2',
    store: () => r2,
    setup({ runtime, dataDir, logger }) {
      const store = new R2Store({ ...options.store, root: join(dataDir, 'r2') });
      r2 = store;
      installR2(runtime, store, options.host);
      logger.info(`R2 buckets in ${dataDir}/r2`);
      return { adminRoutes: [{ path: '/r2', app: r2Routes(store) }], close: () => store.close() };
    },
  };
}
