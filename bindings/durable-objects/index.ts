// Durable Objects on a server as a whole: the registry under the data directory, the ops, the
// alarm scheduler, and the checks a deploy must pass (migrations, bindings, exported classes).
import type { Logger } from 'pino';
import type { BindingConfig, DurableObjectMigration } from '../../src/model/worker-definition.js';
import { DurableObjectRegistry, MigrationError, type MigrationPlan } from './registry.js';
import { AlarmScheduler, type AlarmOptions } from './alarms.js';
import { DurableObjects, registerDurableObjectOps, type DurableObjectOptions, type DurableObjectRuntime } from './host.js';
import { DURABLE_OBJECT_BINDING } from './protocol.js';

export { MigrationError } from './registry.js';
export type { DurableObjectRuntime } from './host.js';

export interface DurableObjectsSetup extends DurableObjectOptions {
  dataDir: string;
  logger: Logger;
  alarms?: AlarmOptions;
}

export interface DurableObjectService {
  registry: DurableObjectRegistry;
  alarms: AlarmScheduler;
  /** Start firing alarms (those stored before a restart too): once the workers are deployed. */
  startAlarms(): void;
  /** Check a deploy; throws MigrationError naming the problem. Apply the plan once it is live. */
  plan(deploy: DeployCheck): MigrationPlan;
  apply(plan: MigrationPlan): void;
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
  const registry = new DurableObjectRegistry(setup.dataDir);
  const alarms = new AlarmScheduler(registry, setup.logger, setup.alarms);
  const objects = new DurableObjects(registry, runtime, alarms, setup);
  registerDurableObjectOps(objects, runtime);
  objects.onHandlerError = (ref, message) => setup.logger.warn({ worker: ref.namespace.script, durableObject: ref.namespace.className }, `Durable Object ${ref.namespace.className}: a WebSocket handler threw ${message}`);
  const startAlarms = () => alarms.start(async (alarm) => {
    const namespace = registry.namespace(alarm.account, alarm.script, alarm.className);
    if (!namespace) return `class ${alarm.className} no longer exists`;
    const out = await objects.deliver(namespace, alarm.id, alarm.name, { kind: 'alarm', retryCount: alarm.retries }, undefined, { method: 'ALARM', url: `durable-object://${alarm.className}/alarm` });
    if (out.failure !== undefined) return out.failure;
    if (out.error) return `${out.error.name}: ${out.error.message}`;
    return null;
  });
  return {
    registry,
    alarms,
    startAlarms,
    plan: (deploy) => planDeploy(registry, deploy),
    apply: (plan) => registry.apply(plan),
    close: () => {
      alarms.close();
      registry.close();
    },
  };
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
