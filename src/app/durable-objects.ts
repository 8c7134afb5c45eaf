// Durable Objects in a server (`cinder serve`, `cinder dev`): the registry and object files under
// the data directory, the do.* ops, alarms, and the object host's settings. Objects are embedded in
// this process; with --redis they are not yet placed across nodes (each node keeps its own).
import type { Logger } from 'pino';
import type { Runtime } from '../runtime/runtime.js';
import type { ObjectHostOptions } from '../runtime/durable-objects/object-host.js';
import { installDurableObjects, type DurableObjectService } from '../../bindings/durable-objects/index.js';
import type { AlarmOptions } from '../../bindings/durable-objects/alarms.js';
import type { DurableObjectDeploys } from '../control/deployments.js';

export interface DurableObjectServeOptions extends ObjectHostOptions {
  alarms?: AlarmOptions;
  /** bytes one object's database may grow to */
  maxDatabaseBytes?: number;
  /** processes the objects' storage calls run in (default 2) */
  storageProcesses?: number;
}

export function setUpDurableObjects(runtime: Runtime, dataDir: string, logger: Logger, options: DurableObjectServeOptions = {}): { service: DurableObjectService; deploys: DurableObjectDeploys } {
  runtime.objects({ idleMs: options.idleMs, maxLive: options.maxLive });
  const service = installDurableObjects(runtime, { dataDir, logger, alarms: options.alarms, maxDatabaseBytes: options.maxDatabaseBytes, storageProcesses: options.storageProcesses });
  const deploys: DurableObjectDeploys = {
    plan: (deploy) => service.plan(deploy),
    apply: (plan) => service.apply(plan as ReturnType<DurableObjectService['plan']>),
  };
  return { service, deploys };
}
