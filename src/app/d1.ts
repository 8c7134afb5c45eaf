// D1 in `cinder serve` as a whole: the d1.* ops for workers, the admin routes under /d1
// (control/d1-routes.ts), and the storage (<data>/d1/<account>/<id>.sqlite).
import { D1Service, installD1, type D1HostOptions, type D1ServiceOptions } from '../../bindings/d1/index.js';
import { d1Routes } from '../control/d1-routes.js';
import type { ServeExtension } from './serve.js';

export interface D1ServeOptions {
  service?: Omit<D1ServiceOptions, 'dataDir'>;
  host?: D1HostOptions;
}

export function d1ServeExtension(options: D1ServeOptions = {}): ServeExtension & { service(): D1Service | null } {
  let d1: D1Service | null = null;
  return {
    name: 'd1',
    service: () => d1,
    setup({ runtime, dataDir, logger }) {
      const service = new D1Service({ ...options.service, dataDir });
      d1 = service;
      installD1(runtime, service, options.host);
      logger.info(`D1 databases in ${dataDir}/d1`);
      return { adminRoutes: [{ path: '/d1', app: d1Routes(service) }], close: () => service.close() };
    },
  };
}
