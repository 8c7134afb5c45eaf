// Durable Objects in a server (`cinder serve`, `cinder dev`): the registry and object files under
// the data directory, the do.* ops, alarms, and the object host's settings. Objects are embedded in
// this process; with --redis each object has one holding process across every node, which the
// others forward to (placeObjectsOnRedis below; object-placement.ts, node-link.ts).
import type { Logger } from 'pino';
import type { Runtime } from '../runtime/runtime.js';
import type { ObjectHostOptions } from '../runtime/durable-objects/object-host.js';
import { installDurableObjects, type DurableObjectService } from '../../bindings/durable-objects/index.js';
import type { AlarmOptions } from '../../bindings/durable-objects/alarms.js';
import type { DurableObjectDeploys } from '../control/deployments.js';
import type { RedisDeploymentStore } from '../store/redis.js';
import type { ObjectPlacement, SharedClasses } from '../../bindings/durable-objects/index.js';
import { RedisObjectPlacement, redisSharedClasses, sharedSecret } from './object-placement.js';
import { startNodeLink } from './node-link.js';

export interface DurableObjectServeOptions extends ObjectHostOptions {
  alarms?: AlarmOptions;
  /** bytes one object's database may grow to */
  maxDatabaseBytes?: number;
  /** with --redis: the holder lease (default 10 s) */
  leaseMs?: number;
  /** with --redis: the address the internal endpoint binds (default 127.0.0.1) */
  internalHost?: string;
}

export interface ObjectSharing {
  shared: { secret: Buffer; classes: SharedClasses };
  placement: ObjectPlacement;
}

export function setUpDurableObjects(runtime: Runtime, dataDir: string, logger: Logger, options: DurableObjectServeOptions = {}, sharing?: ObjectSharing): { service: DurableObjectService; deploys: DurableObjectDeploys } {
  runtime.objects({ idleMs: options.idleMs, maxLive: options.maxLive });
  const service = installDurableObjects(runtime, { dataDir, logger, alarms: options.alarms, maxDatabaseBytes: options.maxDatabaseBytes, shared: sharing?.shared, placement: sharing?.placement });
  const deploys: DurableObjectDeploys = {
    plan: (deploy) => service.plan(deploy),
    apply: (plan) => service.apply(plan as Awaited<ReturnType<DurableObjectService['plan']>>),
    prepare: (account, script) => service.prepare(account, script),
  };
  return { service, deploys };
}

/**
 * Durable Objects placed across the processes and nodes of one Redis: the id secret and each
 * worker's classes shared, a holder lease for this process, and its internal endpoint. Returns
 * the objects and what to close (the lease first: the node's other processes take over at once).
 */
export async function placeObjectsOnRedis(runtime: Runtime, dataDir: string, logger: Logger, store: RedisDeploymentStore, node: string, options: DurableObjectServeOptions = {}) {
  const [idSecret, linkSecret] = await Promise.all([sharedSecret(store.client, 'id-secret'), sharedSecret(store.client, 'link-secret')]);
  const placement = new RedisObjectPlacement({ client: store.client, node, logger, leaseMs: options.leaseMs });
  const objects = setUpDurableObjects(runtime, dataDir, logger, options, { shared: { secret: idSecret, classes: redisSharedClasses(store.client) }, placement });
  const link = await startNodeLink({ host: options.internalHost ?? '127.0.0.1', secret: linkSecret.toString('hex'), logger, receive: (event) => objects.service.receive(event) });
  try {
    await placement.start(link.address, linkSecret.toString('hex'));
  } catch (error) {
    await link.close();
    throw error;
  }
  return {
    ...objects,
    placement,
    close: async () => {
      await placement.close();
      await link.close();
    },
  };
}
