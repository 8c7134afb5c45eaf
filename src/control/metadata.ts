// The `metadata` part of a multipart upload, in the shape of Cloudflare's Workers script upload:
//
//   { "main_module": "index.js",            // modules format; or "body_part": "worker.js"
//     "bindings": [{ "type": "plain_text", "name": "GREETING", "text": "hi" },
//                  { "type": "kv_namespace", "name": "KV", "namespace_id": "..." },
//                  { "type": "service", "name": "AUTH", "service": "auth" }],
//     "vars": { "MODE": "prod" },          // shorthand for plain_text / json bindings
//     "compatibility_date": "2025-01-01",
//     "compatibility_flags": ["nodejs_compat"],   // only flags Cinder supports; others refused by name
//     "routes": ["example.com/api/*"], "crons": ["*/5 * * * *"], "limits": { "cpu_ms": 100 },
//     "keep_bindings": ["secret_text"] }    // carry these binding types over from the live version
//
// Anything malformed is a 400 whose message names the field (`metadata.bindings[1].text: ...`).
import { setBinding, type BindingConfig } from '../model/worker-definition.js';
import type { Limits } from '../model/limits.js';
import { SUPPORTED_COMPATIBILITY_FLAGS, unsupportedFlags } from '../model/compatibility.js';
import { badRequest } from './errors.js';
import { bindingNameError, cronError, normalizeRoute, parseLimits } from './validate.js';

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
  compatibilityFlags: string[];
}

const BINDING_TYPES = ['plain_text', 'secret_text', 'json', 'kv_namespace', 'service'] as const;

// Fields Cloudflare's upload accepts that have no meaning here; accepted so wrangler-made metadata
// uploads, and ignored. Anything else unknown is refused, so a typo ("route") is not silently lost.
const IGNORED_FIELDS = new Set(['usage_model', 'logpush', 'placement', 'tags', 'tail_consumers', 'observability', 'annotations']);
const KNOWN_FIELDS = new Set(['main_module', 'body_part', 'bindings', 'vars', 'compatibility_date', 'compatibility_flags', 'routes', 'crons', 'limits', 'keep_bindings']);

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
    default:
      throw badRequest(`${where}.type: unsupported binding type ${JSON.stringify(raw.type)} (supported: ${BINDING_TYPES.join(', ')})`);
  }
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

  return { mainModule, bodyPart, bindings, keepBindings, routes, crons, limits, compatibilityDate, compatibilityFlags };
}
