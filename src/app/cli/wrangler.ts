// Reading a wrangler project (wrangler.toml, wrangler.json or wrangler.jsonc), so people used to
// wrangler can `cinder deploy` (and `cinder dev`) the project they already have. Only the keys
// Cinder acts on are read: name, main, compatibility_date, compatibility_flags, vars,
// kv_namespaces, services, triggers.crons, routes/route, limits, rules, build, and [env.<name>]
// sections. Every other key is refused by
// name unless it changes nothing a worker can observe here (wrangler-keys.ts).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { unsupportedKeys } from './wrangler-keys.js';
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
  crons: string[];
  /** undefined when the config names no routes (a deploy then leaves the worker's routes alone) */
  routes?: string[];
  limits?: Record<string, unknown>;
  /** module rules (wrangler's `rules`), before the defaults */
  rules: ModuleRule[];
  /** wrangler's `[build]`: run before bundling */
  build?: BuildStep;
}

/** How the project's worker is bundled. */
export function bundleOptions(config: ProjectConfig | undefined): BundleOptions {
  return config ? { rules: config.rules, compatibilityFlags: config.compatibilityFlags } : {};
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
    top = { ...raw, vars: undefined, kv_namespaces: undefined, services: undefined, ...section };
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

  return {
    file: path,
    name: str('name'),
    main: main ? resolve(dirname(path), main) : undefined,
    compatibilityDate: str('compatibility_date'),
    compatibilityFlags,
    vars,
    kvNamespaces,
    services,
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
  ];
  const metadata: Record<string, unknown> = { bindings };
  if (config.compatibilityDate) metadata.compatibility_date = config.compatibilityDate;
  if (config.compatibilityFlags.length) metadata.compatibility_flags = config.compatibilityFlags;
  if (config.crons.length) metadata.crons = config.crons;
  if (config.routes) metadata.routes = config.routes;
  if (config.limits) metadata.limits = config.limits;
  return metadata;
}
