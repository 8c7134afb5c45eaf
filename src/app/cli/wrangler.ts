// Reading a wrangler project (wrangler.toml, wrangler.json or wrangler.jsonc), so people used to
// wrangler can `cinder deploy` (and `cinder dev`) the project they already have. Only the keys
// Cinder acts on are read: name, main, compatibility_date, compatibility_flags, vars,
// kv_namespaces, services, durable_objects.bindings, migrations, d1_databases, r2_buckets, queues,
// triggers.crons, routes/route, limits, rules, build, and [env.<name>] sections. Every other key is refused by
// name unless it changes nothing a worker can observe here (wrangler-keys.ts).
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { DurableObjectMigration } from '../../model/worker-definition.js';
import { dirname, join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { setBinding, type BindingConfig, type QueueConsumerSpec } from '../../model/worker-definition.js';
import { queueConsumerError, queueNameError } from '../../../bindings/queues/names.js';
import { unsupportedKeys } from './wrangler-keys.js';
import { readAssetsTable, type ProjectAssets } from './assets.js';
import { MODULE_RULE_TYPES, type BuildStep, type ModuleRule } from '../module-rules.js';
import type { BundleOptions } from '../bundle.js';

export const CONFIG_FILES = ['wrangler.toml', 'wrangler.jsonc', 'wrangler.json'] as const;

export interface ProjectConfig {
  /** the config file read */
  file: string;
  name?: string;
  /** absolute path of the entry module */
  main?: string;
  compatibilityDate?: string;
  /** only flags Cinder supports (wrangler-keys.ts refuses the others) */
  compatibilityFlags: string[];
  vars: Record<string, unknown>;
  kvNamespaces: { binding: string; id: string }[];
  services: { binding: string; service: string; entrypoint?: string }[];
  durableObjects: { binding: string; className: string; scriptName?: string }[];
  /** [[migrations]], in order; each has a tag */
  migrations: DurableObjectMigration[];
  d1Databases: D1DatabaseConfig[];
  r2Buckets: { binding: string; bucketName: string }[];
  queueProducers: { binding: string; queue: string }[];
  queueConsumers: QueueConsumerSpec[];
  crons: string[];
  /** undefined when the config names no routes (a deploy then leaves the worker's routes alone) */
  routes?: string[];
  limits?: Record<string, unknown>;
  /** [assets] (cli/assets.ts) */
  assets?: ProjectAssets;
  /** module rules (wrangler's `rules`), before the defaults */
  rules: ModuleRule[];
  /** wrangler's `[build]`: run before bundling */
  build?: BuildStep;
}

/** How the project's worker is bundled. */
export function bundleOptions(config: ProjectConfig | undefined): BundleOptions {
  return config ? { rules: config.rules, compatibilityFlags: config.compatibilityFlags, compatibilityDate: config.compatibilityDate } : {};
}

/** One [[d1_databases]] entry. */
export interface D1DatabaseConfig {
  binding: string;
  databaseName?: string;
  databaseId: string;
  /** absolute path of the migrations directory (wrangler's default: ./migrations) */
  migrationsDir: string;
  /** the table that records applied migrations (wrangler's default: d1_migrations) */
  migrationsTable: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The wrangler config in `dir`, if there is one. */
export function findConfig(dir: string): string | null {
  for (const name of CONFIG_FILES) {
    const file = join(dir, name);
    if (existsSync(file) && statSync(file).isFile()) return file;
  }
  return null;
}

export function isConfigFile(path: string): boolean {
  return /(^|[\\/])wrangler\.(toml|json|jsonc)$/.test(path);
}

/** JSON with comments and trailing commas (wrangler.jsonc) as plain JSON. */
export function stripJsonComments(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      // copy a string literal verbatim, escapes included
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      // keep line numbers for JSON.parse's messages
      out += text.slice(i, end === -1 ? text.length : end + 2).replace(/[^\n]/g, ' ');
      i = end === -1 ? text.length : end + 1;
    } else {
      out += c;
    }
  }
  // trailing commas before } or ]
  return out.replace(/,(\s*[}\]])/g, '$1');
}

function parseFile(file: string): Record<string, unknown> {
  const text = readFileSync(file, 'utf8');
  try {
    const parsed = file.endsWith('.toml') ? parseToml(text) : JSON.parse(stripJsonComments(text));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('expected a table/object at the top level');
    return parsed as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`${file} is not valid ${file.endsWith('.toml') ? 'TOML' : 'JSON'}: ${(error as Error).message}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function readConfig(file: string, env?: string): ProjectConfig {
  const path = resolve(file);
  const raw = parseFile(path);
  const refused = unsupportedKeys(raw, (key) => `${path}: ${key}`);
  if (refused) throw new ConfigError(refused);
  let top = raw;
  if (env) {
    const section = isObject(raw.env) ? raw.env[env] : undefined;
    if (!isObject(section)) throw new ConfigError(`${path} has no [env.${env}] section`);
    const refusedInEnv = unsupportedKeys(section, (key) => `${path}: [env.${env}] ${key}`);
    if (refusedInEnv) throw new ConfigError(refusedInEnv);
    // As in wrangler: most keys inherit from the top level; bindings and vars do not.
    top = { ...raw, vars: undefined, kv_namespaces: undefined, services: undefined, durable_objects: undefined, d1_databases: undefined, r2_buckets: undefined, queues: undefined, ...section };
    if (!section.name && typeof raw.name === 'string') top.name = `${raw.name}-${env}`;
  }
  const where = (key: string) => `${path}: ${env ? `[env.${env}] ` : ''}${key}`;

  const str = (key: string): string | undefined => {
    const value = top[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !value) throw new ConfigError(`${where(key)} must be a non-empty string`);
    return value;
  };
  const list = <T>(key: string, item: (value: unknown, i: number) => T): T[] => {
    const value = top[key];
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw new ConfigError(`${where(key)} must be an array`);
    return value.map(item);
  };

  const main = str('main');
  const vars = top.vars === undefined ? {} : top.vars;
  if (!isObject(vars)) throw new ConfigError(`${where('vars')} must be a table of NAME = value`);

  const kvNamespaces = list('kv_namespaces', (value, i) => {
    if (!isObject(value) || typeof value.binding !== 'string' || typeof value.id !== 'string') {
      throw new ConfigError(`${where(`kv_namespaces[${i}]`)} must be { binding = "NAME", id = "namespace id" }`);
    }
    return { binding: value.binding, id: value.id };
  });
  const services = list('services', (value, i) => {
    if (!isObject(value) || typeof value.binding !== 'string' || typeof value.service !== 'string' || (value.entrypoint !== undefined && typeof value.entrypoint !== 'string')) {
      throw new ConfigError(`${where(`services[${i}]`)} must be { binding = "NAME", service = "worker-name" } (and optionally entrypoint = "ClassName")`);
    }
    return value.entrypoint === undefined ? { binding: value.binding, service: value.service } : { binding: value.binding, service: value.service, entrypoint: value.entrypoint };
  });

  let durableObjects: ProjectConfig['durableObjects'] = [];
  if (top.durable_objects !== undefined) {
    const section = top.durable_objects;
    if (!isObject(section) || !Array.isArray(section.bindings ?? [])) throw new ConfigError(`${where('durable_objects')} must be a table with bindings = [{ name = "COUNTER", class_name = "Counter" }]`);
    for (const key of Object.keys(section)) if (key !== 'bindings') throw new ConfigError(`${where(`durable_objects.${key}`)} is not a key Cinder knows (durable_objects has bindings only)`);
    durableObjects = ((section.bindings ?? []) as unknown[]).map((value, i) => {
      const at = where(`durable_objects.bindings[${i}]`);
      if (!isObject(value) || typeof value.name !== 'string' || typeof value.class_name !== 'string') throw new ConfigError(`${at} must be { name = "COUNTER", class_name = "Counter" } (script_name optional)`);
      if (value.environment !== undefined) throw new ConfigError(`${at}.environment: bindings to a class in another environment are not supported by Cinder; use script_name`);
      if (value.script_name !== undefined && (typeof value.script_name !== 'string' || !value.script_name)) throw new ConfigError(`${at}.script_name must be a worker name`);
      const unknownKey = Object.keys(value).find((k) => !['name', 'class_name', 'script_name'].includes(k));
      if (unknownKey) throw new ConfigError(`${at}.${unknownKey} is not a key Cinder knows (name, class_name, script_name)`);
      return value.script_name === undefined ? { binding: value.name, className: value.class_name } : { binding: value.name, className: value.class_name, scriptName: value.script_name as string };
    });
  }
  const classNames = (value: unknown, at: string): string[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.some((c) => typeof c !== 'string' || !c)) throw new ConfigError(`${at} must be an array of class names`);
    return value as string[];
  };
  const migrations = list('migrations', (value, i): DurableObjectMigration => {
    const at = where(`migrations[${i}]`);
    if (!isObject(value)) throw new ConfigError(`${at} must be a table such as { tag = "v1", new_sqlite_classes = ["Counter"] }`);
    if (typeof value.tag !== 'string' || !value.tag) throw new ConfigError(`${at}.tag is missing: every migration needs a tag (it is applied once per tag)`);
    if (value.transferred_classes !== undefined) throw new ConfigError(`${at}.transferred_classes: moving Durable Object classes between workers is not supported by Cinder`);
    const unknownKey = Object.keys(value).find((k) => !['tag', 'new_classes', 'new_sqlite_classes', 'renamed_classes', 'deleted_classes'].includes(k));
    if (unknownKey) throw new ConfigError(`${at}.${unknownKey} is not a migration key Cinder knows (tag, new_classes, new_sqlite_classes, renamed_classes, deleted_classes)`);
    const renamed = value.renamed_classes ?? [];
    if (!Array.isArray(renamed) || renamed.some((r) => !isObject(r) || typeof r.from !== 'string' || typeof r.to !== 'string')) throw new ConfigError(`${at}.renamed_classes must be [{ from = "Old", to = "New" }]`);
    return {
      tag: value.tag,
      newClasses: classNames(value.new_classes, `${at}.new_classes`),
      newSqliteClasses: classNames(value.new_sqlite_classes, `${at}.new_sqlite_classes`),
      renamedClasses: (renamed as { from: string; to: string }[]).map((r) => ({ from: r.from, to: r.to })),
      deletedClasses: classNames(value.deleted_classes, `${at}.deleted_classes`),
    };
  });

  const d1Databases = list('d1_databases', (value, i): D1DatabaseConfig => {
    const shape = `${where(`d1_databases[${i}]`)} must be { binding = "DB", database_name = "name", database_id = "id", migrations_dir? = "migrations" }`;
    if (!isObject(value) || typeof value.binding !== 'string' || !value.binding) throw new ConfigError(shape);
    const id = value.database_id ?? value.database_name;
    if (typeof id !== 'string' || !id) throw new ConfigError(`${shape}: database_id is missing`);
    for (const key of ['database_name', 'migrations_dir', 'migrations_table', 'preview_database_id'] as const) {
      if (value[key] !== undefined && (typeof value[key] !== 'string' || !value[key])) throw new ConfigError(`${where(`d1_databases[${i}].${key}`)} must be a non-empty string`);
    }
    return {
      binding: value.binding,
      databaseName: value.database_name as string | undefined,
      databaseId: id,
      migrationsDir: resolve(dirname(path), (value.migrations_dir as string | undefined) ?? 'migrations'),
      migrationsTable: (value.migrations_table as string | undefined) ?? 'd1_migrations',
    };
  });

  const r2Buckets = list('r2_buckets', (value, i) => {
    if (!isObject(value) || typeof value.binding !== 'string' || !value.binding || typeof value.bucket_name !== 'string' || !value.bucket_name) {
      throw new ConfigError(`${where(`r2_buckets[${i}]`)} must be { binding = "BUCKET", bucket_name = "name" }`);
    }
    return { binding: value.binding, bucketName: value.bucket_name };
  });

  let queueProducers: { binding: string; queue: string }[] = [];
  let queueConsumers: QueueConsumerSpec[] = [];
  if (top.queues !== undefined) {
    if (!isObject(top.queues)) throw new ConfigError(`${where('queues')} must be a table with producers and/or consumers`);
    for (const key of Object.keys(top.queues)) if (key !== 'producers' && key !== 'consumers') throw new ConfigError(`${where(`queues.${key}`)} is not supported by Cinder; queues has producers and consumers`);
    const entries = (key: 'producers' | 'consumers') => {
      const value = (top.queues as Record<string, unknown>)[key];
      if (value === undefined) return [];
      if (!Array.isArray(value)) throw new ConfigError(`${where(`queues.${key}`)} must be an array`);
      return value;
    };
    queueProducers = entries('producers').map((value, i) => {
      if (!isObject(value) || typeof value.binding !== 'string' || !value.binding || typeof value.queue !== 'string') throw new ConfigError(`${where(`queues.producers[${i}]`)} must be { binding = "QUEUE", queue = "queue-name" }`);
      const error = queueNameError(value.queue);
      if (error) throw new ConfigError(`${where(`queues.producers[${i}].queue`)}: ${error}`);
      for (const key of Object.keys(value)) if (key !== 'binding' && key !== 'queue') throw new ConfigError(`${where(`queues.producers[${i}].${key}`)} is not supported by Cinder`);
      return { binding: value.binding, queue: value.queue };
    });
    queueConsumers = entries('consumers').map((value, i) => {
      if (!isObject(value)) throw new ConfigError(`${where(`queues.consumers[${i}]`)} must be { queue = "name", max_batch_size?, max_batch_timeout?, max_retries?, dead_letter_queue?, retry_delay? }`);
      const error = queueConsumerError(value);
      if (error) throw new ConfigError(`${where(`queues.consumers[${i}]`)}.${error}`);
      return value as unknown as QueueConsumerSpec;
    });
  }

  let crons: string[] = [];
  if (top.triggers !== undefined) {
    if (!isObject(top.triggers)) throw new ConfigError(`${where('triggers')} must be a table such as { crons = ["*/5 * * * *"] }`);
    const value = top.triggers.crons ?? [];
    if (!Array.isArray(value) || value.some((c) => typeof c !== 'string')) throw new ConfigError(`${where('triggers.crons')} must be an array of cron strings`);
    crons = value as string[];
  }

  let routes: string[] | undefined;
  const pattern = (value: unknown, key: string): string => {
    const p = isObject(value) ? value.pattern : value;
    if (typeof p !== 'string' || !p) throw new ConfigError(`${where(key)} must be a pattern string or { pattern = "..." }`);
    return p;
  };
  if (top.routes !== undefined) routes = list('routes', (value, i) => pattern(value, `routes[${i}]`));
  if (top.route !== undefined) routes = [...(routes ?? []), pattern(top.route, 'route')];

  let limits: Record<string, unknown> | undefined;
  if (top.limits !== undefined) {
    if (!isObject(top.limits)) throw new ConfigError(`${where('limits')} must be a table such as { cpu_ms = 100 }`);
    limits = top.limits;
  }

  const rules = list('rules', (value, i): ModuleRule => {
    const at = where(`rules[${i}]`);
    if (!isObject(value)) throw new ConfigError(`${at} must be { type = "Text", globs = ["**/*.md"] }`);
    for (const key of Object.keys(value)) {
      if (!['type', 'globs', 'fallthrough'].includes(key)) throw new ConfigError(`${at}.${key} is not a module rule field (type, globs, fallthrough)`);
    }
    if (!MODULE_RULE_TYPES.includes(value.type as ModuleRule['type'])) {
      throw new ConfigError(`${at}.type must be one of ${MODULE_RULE_TYPES.join(', ')}${typeof value.type === 'string' ? ` (not "${value.type}")` : ''}`);
    }
    if (!Array.isArray(value.globs) || !value.globs.length || value.globs.some((g) => typeof g !== 'string' || !g)) throw new ConfigError(`${at}.globs must be a non-empty array of glob strings`);
    if (value.fallthrough !== undefined && typeof value.fallthrough !== 'boolean') throw new ConfigError(`${at}.fallthrough must be true or false`);
    return { type: value.type as ModuleRule['type'], globs: value.globs as string[], fallthrough: value.fallthrough as boolean | undefined };
  });

  let build: BuildStep | undefined;
  if (top.build !== undefined) {
    const b = top.build;
    if (!isObject(b)) throw new ConfigError(`${where('build')} must be a table such as { command = "npm run build" }`);
    for (const key of Object.keys(b)) {
      if (!['command', 'cwd', 'watch_dir'].includes(key)) throw new ConfigError(`${where(`build.${key}`)} is not supported by Cinder; build takes command, cwd and watch_dir (see docs/compat.md)`);
    }
    if (typeof b.command !== 'string' || !b.command.trim()) throw new ConfigError(`${where('build.command')} must be a non-empty string (the shell command to run before bundling)`);
    if (b.cwd !== undefined && (typeof b.cwd !== 'string' || !b.cwd)) throw new ConfigError(`${where('build.cwd')} must be a directory path`);
    const watch = b.watch_dir === undefined ? ['src'] : Array.isArray(b.watch_dir) ? b.watch_dir : [b.watch_dir];
    if (watch.some((d) => typeof d !== 'string' || !d)) throw new ConfigError(`${where('build.watch_dir')} must be a directory path or an array of them`);
    const base = dirname(path);
    build = { command: b.command, cwd: resolve(base, (b.cwd as string | undefined) ?? '.'), watchDirs: (watch as string[]).map((d) => resolve(base, d)) };
  }

  const flags = top.compatibility_flags;
  const compatibilityFlags = Array.isArray(flags) ? [...new Set(flags as string[])] : [];

  let assets: ProjectAssets | undefined;
  if (top.assets !== undefined) {
    const read = readAssetsTable(top.assets, where('assets'), dirname(path));
    if (typeof read === 'string') throw new ConfigError(read);
    assets = read;
  }

  return {
    assets,
    file: path,
    name: str('name'),
    main: main ? resolve(dirname(path), main) : undefined,
    compatibilityDate: str('compatibility_date'),
    compatibilityFlags,
    vars,
    kvNamespaces,
    services,
    durableObjects,
    migrations,
    d1Databases,
    r2Buckets,
    queueProducers,
    queueConsumers,
    crons,
    routes,
    limits,
    rules,
    build,
  };
}

/** The upload metadata (see metadata.ts) a project's config describes. */
export function configMetadata(config: ProjectConfig): Record<string, unknown> {
  const bindings: Record<string, unknown>[] = [
    ...Object.entries(config.vars).map(([name, value]) => (typeof value === 'string' ? { type: 'plain_text', name, text: value } : { type: 'json', name, json: value })),
    ...config.kvNamespaces.map((kv) => ({ type: 'kv_namespace', name: kv.binding, namespace_id: kv.id })),
    ...config.services.map((s) => ({ type: 'service', name: s.binding, service: s.service, ...(s.entrypoint ? { entrypoint: s.entrypoint } : {}) })),
    ...config.durableObjects.map((d) => ({ type: 'durable_object_namespace', name: d.binding, class_name: d.className, ...(d.scriptName ? { script_name: d.scriptName } : {}) })),
    ...config.d1Databases.map((d1) => ({ type: 'd1', name: d1.binding, id: d1.databaseId, ...(d1.databaseName ? { database_name: d1.databaseName } : {}) })),
    ...config.r2Buckets.map((r2) => ({ type: 'r2_bucket', name: r2.binding, bucket_name: r2.bucketName })),
    ...config.queueProducers.map((q) => ({ type: 'queue', name: q.binding, queue_name: q.queue })),
  ];
  const metadata: Record<string, unknown> = { bindings };
  // Every step with its tag: the server applies the ones this worker has not applied yet.
  if (config.migrations.length) {
    metadata.migrations = config.migrations.map((m) => ({ tag: m.tag, new_classes: m.newClasses, new_sqlite_classes: m.newSqliteClasses, renamed_classes: m.renamedClasses, deleted_classes: m.deletedClasses }));
  }
  if (config.compatibilityDate) metadata.compatibility_date = config.compatibilityDate;
  if (config.compatibilityFlags.length) metadata.compatibility_flags = config.compatibilityFlags;
  if (config.crons.length) metadata.crons = config.crons;
  if (config.routes) metadata.routes = config.routes;
  if (config.limits) metadata.limits = config.limits;
  if (config.queueConsumers.length) metadata.queue_consumers = config.queueConsumers;
  return metadata;
}
