// Validation of what users name and configure: worker names, module names, route patterns, cron
// expressions, limits. Each returns a message that says what is wrong, for a 400.
import { validateCron } from '../data-plane/cron.js';
import { DEFAULT_LIMITS, resolveLimits, type Limits } from '../model/limits.js';
import { formatPattern, parsePattern } from '../model/route-pattern.js';

// A worker is reached as `<name>.<anything>`, so its name must be a DNS label: lowercase letters,
// digits and inner dashes, at most 63 characters.
const WORKER_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function workerNameError(name: string): string | null {
  if (WORKER_NAME.test(name)) return null;
  return `invalid worker name "${name}": use 1-63 lowercase letters, digits and dashes, not starting or ending with a dash (it becomes the host label <name>.example.com)`;
}

/** A module name as other modules import it ("index.js", "lib/util.js"); "./x.js" becomes "x.js". */
export function normalizeModuleName(raw: string): { name?: string; error?: string } {
  const name = raw.replace(/^(\.\/)+/, '');
  if (!name) return { error: 'a module has an empty name' };
  if (name.length > 256) return { error: `module name "${name.slice(0, 40)}..." is longer than 256 characters` };
  if (name.startsWith('/') || name.includes('\\') || name.includes('\0') || name.split('/').some((part) => part === '..' || part === '.' || part === '')) {
    return { error: `invalid module name "${raw}": use a relative path such as "index.js" or "lib/util.js" (no "..", no leading "/")` };
  }
  return { name };
}

const BINDING_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export function bindingNameError(name: string): string | null {
  return BINDING_NAME.test(name) ? null : `invalid binding name "${name}": it becomes env.${name}, so it must be a JavaScript identifier`;
}

/** A route pattern in its stored form (no scheme, port or trailing dot, lowercase punycode host), or why it is invalid. */
export function normalizeRoute(pattern: string): { pattern?: string; error?: string } {
  const { parts, error } = parsePattern(pattern);
  return parts ? { pattern: formatPattern(parts) } : { error };
}

export function cronError(expression: string): string | null {
  // The scheduler's own rules (5 fields, or 6 with seconds; must fire some day): data-plane/cron.ts.
  return validateCron(expression);
}

const LIMIT_KEYS = Object.keys(DEFAULT_LIMITS) as (keyof Limits)[];

/** Limits as uploaded: camelCase (`cpuMs`) or wrangler's snake_case (`cpu_ms`). */
export function parseLimits(raw: unknown, where: string): Partial<Limits> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new TypeError(`${where} must be an object such as {"cpu_ms": 100}`);
  const limits: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!LIMIT_KEYS.includes(camel as keyof Limits)) {
      throw new TypeError(`${where}: unknown limit "${key}" (known: ${LIMIT_KEYS.map((k) => k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())).join(', ')})`);
    }
    limits[camel] = value;
  }
  try {
    resolveLimits(limits as Partial<Limits>);
  } catch (error) {
    throw new TypeError(`${where}: ${(error as Error).message}`);
  }
  return limits as Partial<Limits>;
}
