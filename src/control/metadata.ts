// The `metadata` part of a multipart upload, in the shape of Cloudflare's Workers script upload:
//
//   { "main_module": "index.js",            // modules format; or "body_part": "worker.js"
//     "bindings": [{ "type": "plain_text", "name": "GREETING", "text": "hi" },
//                  { "type": "kv_namespace", "name": "KV", "namespace_id": "..." },
//                  { "type": "service", "name": "AUTH", "service": "auth" },
//                  { "type": "d1", "name": "DB", "id": "..." },
//                  { "type": "r2_bucket", "name": "FILES", "bucket_name": "..." }],
//     "vars": { "MODE": "prod" },          // shorthand for plain_text / json bindings
//     "compatibility_date": "2025-01-01",
//     "compatibility_flags": ["nodejs_compat"],   // only flags Cinder supports; others refused by name
//     "routes": ["example.com/api/*"], "crons": ["*/5 * * * *"], "limits": { "cpu_ms": 100 },
//     "keep_bindings": ["secret_text"],     // carry these binding types over from the live version
//     "queue_consumers": [{ "queue": "jobs", "max_batch_size": 10, "max_retries": 3, ... }] }
//
// Anything malformed is a 400 whose message names the field (`metadata.bindings[1].text: ...`).
import { setBinding, type BindingConfig, type DurableObjectMigration, type QueueConsumerSpec } from '../model/worker-definition.js';
import { queueConsumerError, queueNameError } from '../../bindings/queues/names.js';
import type { Limits } from '../model/limits.js';
import { SUPPORTED_COMPATIBILITY_FLAGS, unsupportedFlags } from '../model/compatibility.js';
import { badRequest } from './errors.js';
import { bindingNameError, cronError, normalizeRoute, parseLimits } from './validate.js';
import { databaseIdError } from '../../bindings/d1/service.js';
import { bucketNameError } from '../../bindings/r2/store.js';
import type { AssetsConfig } from '../model/assets.js';
import { parseAssetsConfig } from './assets.js';

export interface UploadMetadata {
  mainModule?: string;
  bodyPart?: string;
  bindings: Record<string, BindingConfig>;
  /** binding types to copy from the worker's current version unless re-declared */
  keepBindings: BindingConfig['type'][];
  /** undefined: the upload leaves the worker's routes as they are */
  routes?: string[];
  crons: string[];
  limits: Partial<Limits>;
  compatibilityDate: string | null;
  /** Durable Object migrations to apply with this upload (steps already applied are skipped by tag) */
  migrations: DurableObjectMigration[];
  compatibilityFlags: string[];
  /** static assets for the version (control/assets.ts): an upload session's manifest, or the
   *  live version's (keep); undefined: the version has none */
  assets?: { session?: string; keep?: boolean; /** absent: the defaults, or with keep the live version's */ config?: AssetsConfig };
  /** queues this version consumes (wrangler's queues.consumers); absent: none */
  queueConsumers?: QueueConsumerSpec[];
}

const BINDING_TYPES = ['plain_text', 'secret_text', 'json', 'kv_namespace', 'service', 'assets', 'durable_object_namespace', 'd1', 'r2_bucket', 'queue'] as const;

// Fields Cloudflare's upload accepts that have no meaning here; accepted so wrangler-made metadata
// uploads, and ignored. Anything else unknown is refused, so a typo ("route") is not silently lost.
const IGNORED_FIELDS = new Set(['usage_model', 'logpush', 'placement', 'tags', 'tail_consumers', 'observability', 'annotations']);
const KNOWN_FIELDS = new Set(['main_module', 'body_part', 'bindings', 'vars', 'compatibility_date', 'compatibility_flags', 'routes', 'crons', 'limits', 'keep_bindings', 'assets', 'migrations', 'queue_consumers']);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(value: unknown, where: string, { optional = false } = {}): string | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'string' || value === '') throw badRequest(`${where} must be a non-empty string`);
  return value;
}

function parseBinding(raw: unknown, where: string): [string, BindingConfig] {
  if (!isObject(raw)) throw badRequest(`${where} must be an object like {"type": "plain_text", "name": "X", "text": "..."}`);
  const name = str(raw.name, `${where}.name`)!;
  const nameError = bindingNameError(name);
  if (nameError) throw badRequest(`${where}.name: ${nameError}`);
  switch (raw.type) {
    case 'plain_text':
    case 'secret_text':
      if (typeof raw.text !== 'string') throw badRequest(`${where}.text must be a string (binding ${name})`);
      return [name, { type: raw.type, text: raw.text }];
    case 'json':
      if (!('json' in raw)) throw badRequest(`${where}.json is missing (binding ${name})`);
      return [name, { type: 'json', json: raw.json }];
    case 'kv_namespace':
      return [name, { type: 'kv_namespace', namespace_id: str(raw.namespace_id, `${where}.namespace_id`)! }];
    case 'service': {
      const service = str(raw.service, `${where}.service`)!;
      const entrypoint = str(raw.entrypoint, `${where}.entrypoint`, { optional: true });
      if (entrypoint !== undefined && !/^[A-Za-z_$][\w$]{0,255}$/.test(entrypoint)) throw badRequest(`${where}.entrypoint must name an exported class (a JavaScript identifier), not ${JSON.stringify(entrypoint)}`);
      return [name, entrypoint === undefined ? { type: 'service', service } : { type: 'service', service, entrypoint }];
    }
    case 'd1': {
      // wrangler sends the database's id as `id`; `database_id` is accepted too
      const id = str(raw.id ?? raw.database_id, `${where}.id`)!;
      const error = databaseIdError(id);
      if (error) throw badRequest(`${where}.id: ${error} (binding ${name})`);
      const databaseName = str(raw.database_name, `${where}.database_name`, { optional: true });
      return [name, databaseName ? { type: 'd1', database_id: id, database_name: databaseName } : { type: 'd1', database_id: id }];
    }
    case 'queue': {
      const queue = str(raw.queue_name, `${where}.queue_name`)!;
      const error = queueNameError(queue);
      if (error) throw badRequest(`${where}.queue_name: ${error} (binding ${name})`);
      return [name, { type: 'queue', queue_name: queue }];
    }
    case 'r2_bucket': {
      const bucket = str(raw.bucket_name, `${where}.bucket_name`)!;
      const error = bucketNameError(bucket);
      if (error) throw badRequest(`${where}.bucket_name: ${error} (binding ${name})`);
      return [name, { type: 'r2_bucket', bucket_name: bucket }];
    }
    case 'assets':
      return [name, { type: 'assets' }];
    case 'durable_object_namespace': {
      const className = str(raw.class_name, `${where}.class_name`)!;
      if (!JS_IDENTIFIER.test(className)) throw badRequest(`${where}.class_name: "${className}" is not a class name (an exported JavaScript identifier)`);
      const scriptName = str(raw.script_name, `${where}.script_name`, { optional: true });
      if (raw.environment !== undefined) throw badRequest(`${where}.environment: Durable Object bindings to another environment are not supported (bind the worker by script_name)`);
      return [name, scriptName === undefined ? { type: 'durable_object_namespace', class_name: className } : { type: 'durable_object_namespace', class_name: className, script_name: scriptName }];
    }
    default:
      throw badRequest(`${where}.type: unsupported binding type ${JSON.stringify(raw.type)} (supported: ${BINDING_TYPES.join(', ')})`);
  }
}

const JS_IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]{0,255}$/;

function classList(raw: unknown, where: string): string[] {
  if (raw === undefined) return [];
  const names = stringList(raw, where);
  for (const [i, name] of names.entries()) if (!JS_IDENTIFIER.test(name)) throw badRequest(`${where}[${i}]: "${name}" is not a class name`);
  return names;
}

const MIGRATION_STEP_FIELDS = new Set(['tag', 'new_classes', 'new_sqlite_classes', 'renamed_classes', 'deleted_classes']);

function migrationStep(raw: unknown, where: string, tag: string | undefined): DurableObjectMigration {
  if (!isObject(raw)) throw badRequest(`${where} must be an object such as {"new_sqlite_classes": ["Counter"]}`);
  if (raw.transferred_classes !== undefined) throw badRequest(`${where}.transferred_classes: moving Durable Object classes between workers is not supported by Cinder`);
  for (const key of Object.keys(raw)) {
    if (!MIGRATION_STEP_FIELDS.has(key) && key !== 'old_tag' && key !== 'new_tag' && key !== 'steps') throw badRequest(`${where} has an unknown field "${key}" (known: ${[...MIGRATION_STEP_FIELDS].join(', ')})`);
  }
  const renamed = raw.renamed_classes === undefined ? [] : raw.renamed_classes;
  if (!Array.isArray(renamed)) throw badRequest(`${where}.renamed_classes must be an array of {"from": "Old", "to": "New"}`);
  const stepTag = raw.tag === undefined ? tag : str(raw.tag, `${where}.tag`);
  return {
    tag: stepTag,
    newClasses: classList(raw.new_classes, `${where}.new_classes`),
    newSqliteClasses: classList(raw.new_sqlite_classes, `${where}.new_sqlite_classes`),
    renamedClasses: renamed.map((r, i) => {
      if (!isObject(r)) throw badRequest(`${where}.renamed_classes[${i}] must be {"from": "Old", "to": "New"}`);
      const [from, to] = classList([r.from, r.to], `${where}.renamed_classes[${i}]`);
      return { from, to };
    }),
    deletedClasses: classList(raw.deleted_classes, `${where}.deleted_classes`),
  };
}

/**
 * Cloudflare's upload shape: {old_tag?, new_tag?, new_classes?, ...} for one step, or
 * {old_tag?, new_tag?, steps: [...]}; Cinder also takes an array of steps each with its own tag
 * (what `cinder deploy` sends for a wrangler config's [[migrations]]).
 */
function parseMigrations(raw: unknown): DurableObjectMigration[] {
  if (raw === undefined || raw === null) return [];
  if (Array.isArray(raw)) return raw.map((step, i) => migrationStep(step, `metadata.migrations[${i}]`, undefined));
  if (!isObject(raw)) throw badRequest('metadata.migrations must be an object such as {"new_tag": "v1", "new_sqlite_classes": ["Counter"]}');
  const newTag = str(raw.new_tag, 'metadata.migrations.new_tag', { optional: true });
  if (raw.steps !== undefined) {
    if (!Array.isArray(raw.steps)) throw badRequest('metadata.migrations.steps must be an array of migration steps');
    const steps = raw.steps.map((step, i) => migrationStep(step, `metadata.migrations.steps[${i}]`, undefined));
    // The steps are applied together under the new tag.
    if (steps.length && newTag !== undefined) steps[steps.length - 1].tag ??= newTag;
    return steps;
  }
  return [migrationStep(raw, 'metadata.migrations', newTag)];
}

function stringList(raw: unknown, where: string): string[] {
  if (!Array.isArray(raw)) throw badRequest(`${where} must be an array of strings`);
  return raw.map((item, i) => str(item, `${where}[${i}]`)!);
}

export function parseMetadata(raw: unknown): UploadMetadata {
  if (!isObject(raw)) throw badRequest('metadata must be a JSON object');
  for (const key of Object.keys(raw)) {
    if (!KNOWN_FIELDS.has(key) && !IGNORED_FIELDS.has(key)) {
      throw badRequest(`metadata has an unknown field "${key}" (known fields: ${[...KNOWN_FIELDS].join(', ')})`);
    }
  }
  const mainModule = str(raw.main_module, 'metadata.main_module', { optional: true });
  const bodyPart = str(raw.body_part, 'metadata.body_part', { optional: true });
  if (mainModule && bodyPart) throw badRequest('metadata has both main_module (modules format) and body_part (service-worker format); give one');

  const bindings: Record<string, BindingConfig> = {};
  const declare = (name: string, binding: BindingConfig, where: string) => {
    if (Object.hasOwn(bindings, name)) throw badRequest(`${where}: binding name "${name}" is declared twice`);
    setBinding(bindings, name, binding);
  };
  if (raw.bindings !== undefined) {
    if (!Array.isArray(raw.bindings)) throw badRequest('metadata.bindings must be an array of {type, name, ...} objects');
    raw.bindings.forEach((item, i) => {
      const [name, binding] = parseBinding(item, `metadata.bindings[${i}]`);
      declare(name, binding, `metadata.bindings[${i}]`);
    });
  }
  if (raw.vars !== undefined) {
    if (!isObject(raw.vars)) throw badRequest('metadata.vars must be an object of NAME: value');
    for (const [name, value] of Object.entries(raw.vars)) {
      const nameError = bindingNameError(name);
      if (nameError) throw badRequest(`metadata.vars: ${nameError}`);
      declare(name, typeof value === 'string' ? { type: 'plain_text', text: value } : { type: 'json', json: value }, 'metadata.vars');
    }
  }

  let keepBindings: BindingConfig['type'][] = [];
  if (raw.keep_bindings !== undefined) {
    keepBindings = stringList(raw.keep_bindings, 'metadata.keep_bindings') as BindingConfig['type'][];
    const unknown = keepBindings.find((t) => !(BINDING_TYPES as readonly string[]).includes(t));
    if (unknown) throw badRequest(`metadata.keep_bindings: unknown binding type "${unknown}" (supported: ${BINDING_TYPES.join(', ')})`);
  }

  let routes: string[] | undefined;
  if (raw.routes !== undefined && raw.routes !== null) {
    if (!Array.isArray(raw.routes)) throw badRequest('metadata.routes must be an array of patterns such as "example.com/api/*"');
    routes = raw.routes.map((item, i) => {
      // wrangler writes routes either as strings or as {pattern, zone_name}
      const pattern = isObject(item) ? item.pattern : item;
      if (typeof pattern !== 'string') throw badRequest(`metadata.routes[${i}] must be a pattern string or {"pattern": "..."}`);
      const normalized = normalizeRoute(pattern);
      if (normalized.error) throw badRequest(`metadata.routes[${i}]: ${normalized.error}`);
      return normalized.pattern!;
    });
    routes = [...new Set(routes)];
  }

  const crons = raw.crons === undefined ? [] : [...new Set(stringList(raw.crons, 'metadata.crons').map((c) => c.trim()))];
  for (const cron of crons) {
    const error = cronError(cron);
    if (error) throw badRequest(`metadata.crons: ${error}`, { cron });
  }

  let limits: Partial<Limits>;
  try {
    limits = parseLimits(raw.limits, 'metadata.limits');
  } catch (error) {
    throw badRequest((error as Error).message);
  }

  let compatibilityDate: string | null = null;
  if (raw.compatibility_date !== undefined) {
    compatibilityDate = str(raw.compatibility_date, 'metadata.compatibility_date')!;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(compatibilityDate) || Number.isNaN(Date.parse(compatibilityDate))) {
      throw badRequest(`metadata.compatibility_date "${compatibilityDate}" is not a date in the form YYYY-MM-DD`);
    }
  }

  let queueConsumers: QueueConsumerSpec[] = [];
  if (raw.queue_consumers !== undefined) {
    if (!Array.isArray(raw.queue_consumers)) throw badRequest('metadata.queue_consumers must be an array of {queue, max_batch_size?, max_batch_timeout?, max_retries?, dead_letter_queue?, retry_delay?}');
    queueConsumers = raw.queue_consumers.map((item, i) => {
      const where = `metadata.queue_consumers[${i}]`;
      if (!isObject(item)) throw badRequest(`${where} must be an object`);
      const error = queueConsumerError(item);
      if (error) throw badRequest(`${where}.${error}`);
      return item as unknown as QueueConsumerSpec;
    });
    const queues = queueConsumers.map((c) => c.queue);
    const twice = queues.find((q, i) => queues.indexOf(q) !== i);
    if (twice) throw badRequest(`metadata.queue_consumers: queue "${twice}" is consumed twice`);
  }

  let compatibilityFlags: string[] = [];
  if (raw.compatibility_flags !== undefined) {
    compatibilityFlags = [...new Set(stringList(raw.compatibility_flags, 'metadata.compatibility_flags'))];
    const unsupported = unsupportedFlags(compatibilityFlags);
    if (unsupported.length) {
      throw badRequest(
        `metadata.compatibility_flags: ${unsupported.map((f) => `"${f}"`).join(', ')} not supported by Cinder (supported: ${SUPPORTED_COMPATIBILITY_FLAGS.join(', ')}; see docs/compat.md)`,
      );
    }
  }

  let assets: UploadMetadata['assets'];
  if (raw.assets !== undefined && raw.assets !== null) {
    const value = raw.assets;
    if (!isObject(value)) throw badRequest('metadata.assets must be {"session": "<asset upload session>", "config": {...}} or {"keep": true}');
    for (const key of Object.keys(value)) if (!['session', 'keep', 'config'].includes(key)) throw badRequest(`metadata.assets has an unknown field "${key}" (known: session, keep, config)`);
    const session = str(value.session, 'metadata.assets.session', { optional: true });
    const keep = value.keep === undefined ? undefined : value.keep === true ? true : (() => { throw badRequest('metadata.assets.keep must be true when given'); })();
    if (!session === !keep) throw badRequest('metadata.assets needs exactly one of "session" (a new asset upload) or "keep": true (the live version\'s assets)');
    assets = { session, keep, config: value.config === undefined ? undefined : parseAssetsConfig(value.config, 'metadata.assets.config') };
  }
  if (Object.values(bindings).some((b) => b.type === 'assets') && !assets) throw badRequest('an assets binding needs metadata.assets (the version\'s static assets)');
  if (Object.values(bindings).filter((b) => b.type === 'assets').length > 1) throw badRequest('only one assets binding per worker (as on Cloudflare)');

  return { mainModule, bodyPart, bindings, keepBindings, routes, crons, limits, compatibilityDate, compatibilityFlags, assets, migrations: parseMigrations(raw.migrations), queueConsumers };
}
