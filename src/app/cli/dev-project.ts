// What `cinder dev` serves, from its command line: wrangler projects (a config file, a directory
// holding one, -c FILE, or, with no path at all, the one in the current directory) and plain
// worker files. A project's worker is named after its `name` and gets its vars, KV namespaces,
// service bindings and limits, then its .dev.vars as secrets, then --var. Each project worker
// knows how to read itself again, so an edit of its config or .dev.vars reloads it.
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { setBinding, type BindingConfig } from '../../model/worker-definition.js';
import type { Limits } from '../../model/limits.js';
import { parseLimits } from '../../control/validate.js';
import { CONFIG_FILES, ConfigError, bundleOptions, findConfig, isConfigFile, readConfig } from './wrangler.js';
import { devVarsFiles, readDevVars } from './dev-vars.js';
import type { DevWorkerSource } from '../dev.js';

export interface DevCommandLine {
  /** positional paths: worker files, directories of them, wrangler configs or project directories */
  paths: string[];
  /** -c/--config files */
  configs: string[];
  /** --env NAME */
  env?: string;
  /** --var KEY:VALUE */
  vars: string[];
  cwd: string;
}

export interface DevPlan {
  /** wrangler projects, the first being the primary one */
  workers: DevWorkerSource[];
  /** plain worker files and directories of them */
  paths: string[];
  /** bindings every plain worker file gets (--var without a project) */
  bindings: Record<string, BindingConfig>;
  /** the worker that answers hosts naming none: the first project's */
  defaultWorker?: string;
  /** where dev state is kept by default: <this>/.cinder/state */
  projectDir: string;
}

/** `--var KEY:VALUE` as [KEY, VALUE] (the value may contain colons). */
export function parseVarOption(value: string): [string, string] {
  const at = value.indexOf(':');
  if (at <= 0) throw new ConfigError(`--var ${value}: expected KEY:VALUE`);
  const name = value.slice(0, at);
  if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new ConfigError(`--var ${value}: "${name}" cannot be a binding name (it must be a JavaScript identifier)`);
  return [name, value.slice(at + 1)];
}

const fileWorkerName = (file: string) => basename(file, extname(file)).toLowerCase().replace(/[^a-z0-9-]/g, '-');

/** A wrangler project as a dev worker; reading it again picks up edits of the config and .dev.vars. */
export function projectWorker(file: string, env: string | undefined, extraVars: [string, string][] = []): DevWorkerSource {
  const read = (): DevWorkerSource => {
    const config = readConfig(file, env);
    // No main with [assets]: a project of static assets only, served as a deploy serves it.
    if (!config.main && !config.assets) throw new ConfigError(`${config.file} has no main: add main = "src/index.ts" (the worker's entry module), or an [assets] directory`);
    const dir = dirname(config.file);
    const bindings: Record<string, BindingConfig> = {};
    for (const [name, value] of Object.entries(config.vars)) setBinding(bindings, name, typeof value === 'string' ? { type: 'plain_text', text: value } : { type: 'json', json: value });
    for (const kv of config.kvNamespaces) setBinding(bindings, kv.binding, { type: 'kv_namespace', namespace_id: kv.id });
    for (const s of config.services) setBinding(bindings, s.binding, { type: 'service', service: s.service });
    for (const d of config.durableObjects) {
      setBinding(bindings, d.binding, d.scriptName ? { type: 'durable_object_namespace', class_name: d.className, script_name: d.scriptName } : { type: 'durable_object_namespace', class_name: d.className });
    }
    for (const d1 of config.d1Databases) setBinding(bindings, d1.binding, { type: 'd1', database_id: d1.databaseId, ...(d1.databaseName ? { database_name: d1.databaseName } : {}) });
    for (const r2 of config.r2Buckets) setBinding(bindings, r2.binding, { type: 'r2_bucket', bucket_name: r2.bucketName });
    for (const q of config.queueProducers) setBinding(bindings, q.binding, { type: 'queue', queue_name: q.queue });
    // As wrangler: .dev.vars stands in for the secrets the deployed worker has, over [vars].
    for (const [name, text] of Object.entries(readDevVars(dir, env).vars)) setBinding(bindings, name, { type: 'secret_text', text });
    for (const [name, text] of extraVars) setBinding(bindings, name, { type: 'plain_text', text });
    let limits: Partial<Limits> | undefined;
    try {
      limits = config.limits ? parseLimits(config.limits, `${config.file}: limits`) : undefined;
    } catch (error) {
      throw new ConfigError((error as Error).message);
    }
    return {
      name: config.name ?? (config.main ? fileWorkerName(config.main) : fileWorkerName(dir)),
      entry: config.main,
      bindings,
      limits,
      settingsFiles: [config.file, ...devVarsFiles(dir, env).candidates],
      reread: read,
      compatibilityDate: config.compatibilityDate,
      bundle: bundleOptions(config),
      build: config.build,
      queueConsumers: config.queueConsumers,
      assets: config.assets && {
        directory: config.assets.directory,
        binding: config.assets.binding,
        config: Object.fromEntries(Object.entries({ htmlHandling: config.assets.htmlHandling, notFoundHandling: config.assets.notFoundHandling, runWorkerFirst: config.assets.runWorkerFirst }).filter(([, v]) => v !== undefined)),
      },
      migrations: config.migrations,
    };
  };
  return read();
}

export function devPlan(line: DevCommandLine): DevPlan {
  const configs = line.configs.map((c) => {
    const file = resolve(line.cwd, c);
    if (!existsSync(file)) throw new ConfigError(`--config ${c}: no such file`);
    return file;
  });
  const paths: string[] = [];
  for (const p of line.paths) {
    const target = resolve(line.cwd, p);
    if (isConfigFile(target) && existsSync(target)) configs.push(target);
    else if (existsSync(target) && statSync(target).isDirectory() && findConfig(target)) configs.push(findConfig(target)!);
    else paths.push(p);
  }
  if (!configs.length && !paths.length) {
    const found = findConfig(line.cwd);
    if (!found) throw new ConfigError(`no ${CONFIG_FILES.join(', ')} in ${line.cwd}: run cinder dev in a project directory, or name what to serve (cinder dev src/index.ts, cinder dev -c path/to/wrangler.toml)`);
    configs.push(found);
  }
  if (line.env && !configs.length) throw new ConfigError('--env selects a section of a wrangler config; it does not apply to plain worker files');
  const vars = line.vars.map(parseVarOption);
  // --var goes to the primary worker (the first project), or to the plain files when there is none.
  const workers = configs.map((file, i) => projectWorker(file, line.env, i === 0 ? vars : []));
  const seen = new Map<string, string>();
  for (const [i, w] of workers.entries()) {
    const other = seen.get(w.name);
    if (other) throw new ConfigError(`${configs[i]} and ${other} both name their worker "${w.name}"; each worker in one cinder dev needs its own name`);
    seen.set(w.name, configs[i]);
  }
  const bindings: Record<string, BindingConfig> = {};
  if (!workers.length) for (const [name, text] of vars) setBinding(bindings, name, { type: 'plain_text', text });
  return { workers, paths, bindings, defaultWorker: workers[0]?.name, projectDir: configs.length ? dirname(configs[0]) : line.cwd };
}
