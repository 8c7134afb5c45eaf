// Durable Objects in a server (`cinder serve`, `cinder dev`): the registry and object files under
// the data directory, the do.* ops, alarms, and the object host's settings. Objects are embedded in
// this process; with --redis each object has one holding process across every node, which the
// others forward to (placeObjectsOnRedis below; object-placement.ts, node-link.ts).
import type { Logger } from 'pino';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../runtime/runtime.js';
import type { ObjectHostOptions } from '../runtime/durable-objects/object-host.js';
import { installDurableObjects, type DurableObjectService } from '../../bindings/durable-objects/index.js';
import type { AlarmOptions } from '../../bindings/durable-objects/alarms.js';
import type { DurableObjectDeploys } from '../control/deployments.js';
import type { RedisDeploymentStore } from '../store/redis.js';
import type { ObjectPlacement, SharedClasses } from '../../bindings/durable-objects/index.js';
import { LeasedObjectPlacement, redisPlacementBackend, redisSharedClasses, sharedSecret, type PlacementBackend } from './object-placement.js';
import { sqlitePlacementBackend } from './placement-sqlite.js';
import { startNodeLink } from './node-link.js';
import type { WebSocketHost } from '../../bindings/websocket/host.js';

export interface DurableObjectServeOptions extends ObjectHostOptions {
  alarms?: AlarmOptions;
  /** bytes one object's database may grow to */
  maxDatabaseBytes?: number;
  /** with --redis: the holder lease (default 10 s) */
  leaseMs?: number;
  /** with --redis: the address the internal endpoint binds (default 127.0.0.1) */
  internalHost?: string;
  /** processes the objects' storage calls run in (default 2) */
  storageProcesses?: number;
}

export interface ObjectSharing {
  /** several nodes: the id secret and the classes they share (absent: this data directory's) */
  shared?: { secret: Buffer; classes: SharedClasses };
  placement: ObjectPlacement;
}

export function setUpDurableObjects(runtime: Runtime, dataDir: string, logger: Logger, options: DurableObjectServeOptions = {}, sharing?: ObjectSharing): { service: DurableObjectService; deploys: DurableObjectDeploys } {
  runtime.objects({ idleMs: options.idleMs, maxLive: options.maxLive, maxLivePerAccount: options.maxLivePerAccount });
  const service = installDurableObjects(runtime, { dataDir, logger, alarms: options.alarms, maxDatabaseBytes: options.maxDatabaseBytes, storageProcesses: options.storageProcesses, shared: sharing?.shared, placement: sharing?.placement });
  const deploys: DurableObjectDeploys = {
    plan: (deploy) => service.plan(deploy),
    apply: (plan) => service.apply(plan as Awaited<ReturnType<DurableObjectService['plan']>>),
    prepare: (account, script) => service.prepare(account, script),
  };
  return { service, deploys };
}

/**
 * Durable Objects placed across serving processes: on Redis, across every process of every node
 * (the id secret and each worker's classes shared there too); without it, across the serving
 * processes of this node (`--processes N`), on a SQLite file under the data directory. A holder
 * lease for this process and its internal endpoint. Returns the objects and what to close (the
 * lease first: the node's other processes take over at once).
 */
export async function placeObjects(runtime: Runtime, dataDir: string, logger: Logger, node: string, where: { redis: RedisDeploymentStore } | { local: true }, options: DurableObjectServeOptions = {}, webSockets?: WebSocketHost) {
  let backend: PlacementBackend;
  let linkSecret: string;
  let shared: ObjectSharing['shared'] | undefined;
  let closeBackend = () => {};
  if ('redis' in where) {
    const client = where.redis.client;
    const ownSecret = join(dataDir, 'durable-objects', 'id-secret');
    const seed = existsSync(ownSecret) ? readFileSync(ownSecret) : undefined;
    const [idSecret, link] = await Promise.all([sharedSecret(client, 'id-secret', 'cinder', seed?.length === 32 ? seed : undefined), sharedSecret(client, 'link-secret')]);
    backend = redisPlacementBackend(client);
    linkSecret = link.toString('hex');
    shared = { secret: idSecret, classes: redisSharedClasses(client) };
  } else {
    const local = sqlitePlacementBackend(dataDir);
    backend = local;
    linkSecret = local.secret();
    closeBackend = () => local.close();
  }
  const placement = new LeasedObjectPlacement({ backend, node, logger, leaseMs: options.leaseMs, store: 'redis' in where ? 'Redis' : "the node's placement file", webSockets });
  const objects = setUpDurableObjects(runtime, dataDir, logger, options, { shared, placement });
  const link = await startNodeLink({
    host: 'redis' in where ? (options.internalHost ?? '127.0.0.1') : '127.0.0.1',
    secret: linkSecret,
    logger,
    receive: (event) => objects.service.receive(event),
    holder: () => placement.holderId,
    // A WebSocket answered by an object held here, for a client connected to another process.
    sockets: webSockets ? { host: webSockets, receive: (event) => objects.service.receiveSocket(event) } : undefined,
  });
  try {
    await placement.start(link.address, linkSecret);
  } catch (error) {
    await link.close();
    closeBackend();
    throw error;
  }
  return {
    ...objects,
    placement,
    close: async () => {
      await placement.close();
      // The WebSocket host first: its 1001s go to every client, relayed ones too (over the link's
      // upgraded connections), before the link cuts those connections.
      webSockets?.close();
      await link.close();
      closeBackend();
    },
  };
}
