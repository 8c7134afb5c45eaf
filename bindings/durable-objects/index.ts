// Durable Objects on a server as a whole: the registry under the data directory, the ops, the
// alarm scheduler, and the checks a deploy must pass (migrations, bindings, exported classes).
import type { Logger } from 'pino';
import type { BindingConfig, DurableObjectMigration } from '../../src/model/worker-definition.js';
import { DurableObjectRegistry, MigrationError, type MigrationPlan, type ScriptClasses } from './registry.js';
import { AlarmScheduler, HELD_ELSEWHERE, type AlarmOptions } from './alarms.js';
import { DurableObjects, registerDurableObjectOps, type DurableObjectOptions, type DurableObjectRuntime } from './host.js';
import { DURABLE_OBJECT_BINDING } from './protocol.js';
import type { ForwardedEvent } from './placement.js';

export { MigrationError } from './registry.js';
export type { DurableObjectRuntime } from './host.js';
export type { ScriptClasses } from './registry.js';
export type { ObjectPlacement, ForwardedEvent, DeliveryOutcome, RemoteHolder, Whereabouts, Fence, RelayedSocket, SocketDeliveryOutcome } from './placement.js';
export type { SocketReceipt } from './host.js';
export { NOT_HELD, PlacementLostError } from './placement.js';
export { HAND_OFF_ONLY, HAND_OFF_TIMEOUT_MS } from './hand-off.js';

/** Each worker's classes as every node sees them (with --redis, kept in Redis: app/object-placement.ts). */
export interface SharedClasses {
  get(account: string, script: string): Promise<ScriptClasses | null>;
  /** write `next` if what is stored is still `base`; false when another node changed it first */
  put(account: string, script: string, base: ScriptClasses | null, next: ScriptClasses): Promise<boolean>;
}

export interface DurableObjectsSetup extends DurableObjectOptions {
  dataDir: string;
  logger: Logger;
  alarms?: AlarmOptions;
  /** several nodes: the id secret they share (else this data directory's) and the classes */
  shared?: { secret: Buffer; classes: SharedClasses };
}

export interface DurableObjectService {
  registry: DurableObjectRegistry;
  alarms: AlarmScheduler;
  /** Start firing alarms (those stored before a restart too): once the workers are deployed. */
  startAlarms(): void;
  /** Check a deploy; throws MigrationError naming the problem. Apply the plan once it is live. */
  plan(deploy: DeployCheck): Promise<SharedPlan>;
  apply(plan: SharedPlan): Promise<void>;
  /** bring a worker's classes in line with what other nodes made them (before serving it) */
  prepare(account: string, script: string): Promise<void>;
  /** an event another process forwarded to this one (app/object-placement.ts's endpoint) */
  receive(event: ForwardedEvent): ReturnType<DurableObjects['receive']>;
  /** an upgrade another process forwarded over the socket endpoint: `join` names the object's
   *  WebSocket to join the endpoint's connection to */
  receiveSocket(event: ForwardedEvent): ReturnType<DurableObjects['receive']>;
  close(): void;
}

export interface DeployCheck {
  account: string;
  script: string;
  bindings: Record<string, BindingConfig>;
  migrations: DurableObjectMigration[];
  /** the names the worker's main module exports as functions (classes) */
  exportedClasses: string[];
}

export function installDurableObjects(runtime: DurableObjectRuntime, setup: DurableObjectsSetup): DurableObjectService {
  const registry = new DurableObjectRegistry(setup.dataDir, setup.shared?.secret);
  const shared = setup.shared?.classes ?? null;
  const alarms = new AlarmScheduler(registry, setup.logger, setup.alarms);
  const objects = new DurableObjects(registry, runtime, alarms, setup);

  registerDurableObjectOps(objects, runtime);
  objects.onHandlerError = (ref, message) => setup.logger.warn({ worker: ref.namespace.script, durableObject: ref.namespace.className }, `Durable Object ${ref.namespace.className}: a WebSocket handler threw ${message}`);
  const startAlarms = () => alarms.start(async (alarm) => {
    const namespace = registry.namespace(alarm.account, alarm.script, alarm.className);
    if (!namespace) return `class ${alarm.className} no longer exists`;
    // Every process of a node sees the node's alarms; the object's holder runs them.
    if (await objects.heldElsewhere(namespace, alarm.id)) return HELD_ELSEWHERE;
    const out = await objects.deliver(namespace, alarm.id, alarm.name, { kind: 'alarm', retryCount: alarm.retries }, undefined, { method: 'ALARM', url: `durable-object://${alarm.className}/alarm` });
    if (out.failure !== undefined) return out.failure;
    if (out.error) return `${out.error.name}: ${out.error.message}`;
    return null;
  });
  const prepare = async (account: string, script: string) => {
    if (!shared) return;
    const state = await shared.get(account, script);
    if (state) registry.replaceScript(account, script, state);
    // Nothing recorded is not "no classes": a node that kept objects before it used Redis tells
    // the others about its classes, and drops nothing.
    else if (registry.classesOf(account, script).length) await shared.put(account, script, null, registry.scriptState(account, script));
  };
  return {
    registry,
    alarms,
    startAlarms,
    prepare,
    receive: (event) => objects.receive(event),
    receiveSocket: (event) => objects.receive(event, true),
    plan: async (deploy) => {
      await prepare(deploy.account, deploy.script);
      const base = shared ? await shared.get(deploy.account, deploy.script) : null;
      return { ...planDeploy(registry, deploy), base };
    },
    apply: async (plan) => {
      registry.apply(plan);
      if (!shared) return;
      const next = registry.scriptState(plan.account, plan.script);
      if (!(await shared.put(plan.account, plan.script, plan.base, next))) {
        await prepare(plan.account, plan.script);
        throw new MigrationError(`another deploy of ${plan.script} changed its Durable Object classes at the same moment; deploy again`);
      }
    },
    close: () => {
      alarms.close();
      objects.storageProcesses.close();
      registry.close();
    },
  };
}

/** A plan, and the classes other nodes had recorded when it was made (null: none, or one node). */
export interface SharedPlan extends MigrationPlan {
  base: ScriptClasses | null;
}

function planDeploy(registry: DurableObjectRegistry, deploy: DeployCheck): MigrationPlan {
  const { account, script, exportedClasses } = deploy;
  const plan = registry.plan(account, script, deploy.migrations);
  const exported = new Set(exportedClasses);
  const created = new Set(plan.steps.flatMap((s) => [...s.newClasses, ...s.newSqliteClasses, ...s.renamedClasses.map((r) => r.to)]));
  for (const record of plan.classes) {
    if (exported.has(record.className)) continue;
    if (created.has(record.className)) throw new MigrationError(`the migrations create Durable Object class ${record.className}, but worker ${script} does not export a class of that name`);
    throw new MigrationError(`worker ${script} has Durable Objects of class ${record.className} but no longer exports it; export it, or delete the class with a migration (deleted_classes = ["${record.className}"], which deletes its objects' data)`);
  }
  const classes = new Set(plan.classes.map((c) => c.className));
  for (const [name, binding] of Object.entries(deploy.bindings)) {
    if (binding.type !== DURABLE_OBJECT_BINDING) continue;
    const target = binding.script_name ?? script;
    if (target === script) {
      if (!exported.has(binding.class_name)) throw new MigrationError(`binding ${name}: worker ${script} does not export a class ${binding.class_name}`);
      if (!classes.has(binding.class_name)) {
        throw new MigrationError(`binding ${name}: class ${binding.class_name} has no migration creating it; add one, e.g. [[migrations]] tag = "v1" new_sqlite_classes = ["${binding.class_name}"]`);
      }
    } else if (!registry.namespace(account, target, binding.class_name)) {
      throw new MigrationError(`binding ${name}: worker ${target} has no Durable Object class ${binding.class_name} in this account (deploy ${target} with a migration creating it first)`);
    }
  }
  return plan;
}
