// Node.js built-in modules under `nodejs_compat`: which ones Cinder implements (each served by an
// add-on, sandbox/addons/), and which ones it refuses at build, with the reason. Imported by the
// bundler (left external when the flag is set, refused otherwise), the loader (resolves the
// specifier to the add-on's namespace) and the add-on table (protocol/addons.ts). Names only.
//
// Specifiers are given without the `node:` prefix; `nodejs_compat` (v2 semantics) accepts both
// `node:buffer` and `buffer`, as workerd does.

/** The add-on that serves every supported module but node:async_hooks alone. */
export const NODEJS_COMPAT_ADDON = 'nodejs-compat';
/** Fills process.env from the worker's text bindings; with it the loader builds the env before the
 *  worker's top level runs, so the top level reads process.env filled, as on workerd. */
export const PROCESS_ENV_ADDON = 'nodejs-process-env';
/** node:async_hooks alone (the `nodejs_als` flag without `nodejs_compat`). */
export const NODEJS_ALS_ADDON = 'nodejs-als';

/** Supported modules, without the `node:` prefix. */
export const NODE_MODULES = [
  'assert',
  'assert/strict',
  'async_hooks',
  'buffer',
  'crypto',
  'events',
  'path',
  'path/posix',
  'process',
  'stream',
  'stream/promises',
  'stream/web',
  'string_decoder',
  'url',
  'util',
  'util/types',
] as const;

export type NodeModuleName = (typeof NODE_MODULES)[number];

/** Modules workerd has (or Node has) that Cinder refuses, with why. */
export const REFUSED_NODE_MODULES: Readonly<Record<string, string>> = {
  fs: 'there is no file system; use KV, R2 or static assets',
  'fs/promises': 'there is no file system; use KV, R2 or static assets',
  child_process: 'workers cannot start processes',
  cluster: 'workers cannot start processes',
  worker_threads: 'workers cannot start threads',
  vm: 'workers cannot compile code at run time',
  v8: 'V8 internals are not exposed to workers',
  inspector: 'the inspector is not exposed to workers',
  'inspector/promises': 'the inspector is not exposed to workers',
  repl: 'workers have no terminal',
  readline: 'workers have no terminal',
  'readline/promises': 'workers have no terminal',
  tty: 'workers have no terminal',
  os: 'workers have no operating system to describe',
  module: 'workers cannot load modules at run time',
  http: 'not implemented in Cinder yet; use fetch()',
  https: 'not implemented in Cinder yet; use fetch()',
  http2: 'not implemented in Cinder yet; use fetch()',
  net: 'not implemented in Cinder yet (raw TCP sockets)',
  tls: 'not implemented in Cinder yet (raw TCP sockets)',
  dgram: 'workers cannot open UDP sockets',
  dns: 'not implemented in Cinder yet; use fetch() to a DNS-over-HTTPS resolver',
  'dns/promises': 'not implemented in Cinder yet; use fetch() to a DNS-over-HTTPS resolver',
  zlib: 'not implemented in Cinder yet; use CompressionStream and DecompressionStream',
  perf_hooks: 'not implemented in Cinder yet; use the global performance',
  diagnostics_channel: 'not implemented in Cinder yet',
  timers: 'not implemented in Cinder yet; use the global setTimeout and setInterval',
  'timers/promises': 'not implemented in Cinder yet; use the global setTimeout',
  querystring: 'not implemented in Cinder yet; use URLSearchParams',
  punycode: 'not implemented in Cinder yet',
  console: 'not implemented in Cinder yet; use the global console',
  'stream/consumers': 'not implemented in Cinder yet; use Response methods (text(), json(), arrayBuffer())',
  'path/win32': 'only POSIX paths are implemented',
  domain: 'deprecated in Node.js and absent from workerd',
  constants: 'deprecated in Node.js and absent from workerd',
  sys: 'deprecated in Node.js and absent from workerd',
  trace_events: 'absent from workerd',
  wasi: 'absent from workerd',
  sea: 'absent from workerd',
  sqlite: 'absent from workerd; use D1',
  test: 'absent from workerd',
};

const SUPPORTED = new Set<string>(NODE_MODULES);

/** Modules Node.js offers only under the `node:` prefix: a bare `test` or `sqlite` is an npm
 *  package, never the built-in. */
const PREFIX_ONLY = new Set(['sea', 'sqlite', 'test']);

/** Every Node.js built-in a bare import may mean (`fs`, `buffer`...): the bundler's to resolve. */
export const BARE_NODE_MODULE_NAMES: readonly string[] = [...NODE_MODULES, ...Object.keys(REFUSED_NODE_MODULES)].filter((name) => !PREFIX_ONLY.has(name));

/** `node:buffer` or `buffer` -> `buffer`; undefined when the name is no Node built-in we know. */
export function nodeModuleName(specifier: string): string | undefined {
  const name = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
  return SUPPORTED.has(name) || Object.prototype.hasOwnProperty.call(REFUSED_NODE_MODULES, name) ? name : undefined;
}

/** Whether `specifier` (with or without `node:`) is a module Cinder implements. */
export function isSupportedNodeModule(specifier: string): boolean {
  const name = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
  return SUPPORTED.has(name);
}

/** Why `specifier` cannot be imported, or null when it can (or is no Node built-in at all). An
 *  unknown `node:` specifier is refused too: Node itself has no such module. */
export function nodeModuleProblem(specifier: string): string | null {
  const name = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
  if (SUPPORTED.has(name)) return null;
  if (Object.prototype.hasOwnProperty.call(REFUSED_NODE_MODULES, name)) {
    return `"${specifier}" is not available under nodejs_compat in Cinder: ${REFUSED_NODE_MODULES[name]} (see docs/compat.md)`;
  }
  if (specifier.startsWith('node:')) return `"${specifier}" is not a Node.js built-in module Cinder knows (see docs/compat.md)`;
  return null;
}

/** Which Node.js modules the flags in force (effectiveFlags) offer: nodejs_als alone offers only
 *  node:async_hooks. */
export function nodeModulesOffered(flagsInForce: readonly string[]): 'all' | 'async_hooks' | 'none' {
  if (flagsInForce.includes('nodejs_compat') || flagsInForce.includes('nodejs_compat_v2')) return 'all';
  if (flagsInForce.includes('nodejs_als')) return 'async_hooks';
  return 'none';
}

/** Why a worker whose flags in force (effectiveFlags) are these cannot import `node:<name>`, or
 *  null when it can. What the bundler says at build. */
export function nodeModuleRefusal(name: string, flagsInForce: readonly string[]): string | null {
  const offered = nodeModulesOffered(flagsInForce);
  if (offered === 'none') {
    if (flagsInForce.includes('no_nodejs_compat')) return `node:${name} is not available: no_nodejs_compat (with no_nodejs_compat_v2) turns Node.js compatibility off`;
    return `node:${name} needs the nodejs_compat compatibility flag (add compatibility_flags = ["nodejs_compat"], or set compatibility_date to 2026-08-04 or later, when it is on by default)`;
  }
  if (offered === 'async_hooks' && name !== 'async_hooks') return `node:${name} needs the nodejs_compat compatibility flag (nodejs_als offers node:async_hooks only)`;
  if (SUPPORTED.has(name)) return null;
  const offers = `nodejs_compat offers ${NODE_MODULES.map((m) => `node:${m}`).join(', ')}; see docs/compat.md`;
  if (Object.prototype.hasOwnProperty.call(REFUSED_NODE_MODULES, name)) return `node:${name} is not available on Cinder: ${REFUSED_NODE_MODULES[name]} (${offers})`;
  return `node:${name} is not a Node.js built-in module Cinder knows (${offers})`;
}

/** Modules with an add-on of their own (the largest), installed only when imported. */
export const SEPARATE_NODE_MODULES = {
  stream: 'nodejs-stream',
  'stream/promises': 'nodejs-stream',
  assert: 'nodejs-assert',
  'assert/strict': 'nodejs-assert',
  crypto: 'nodejs-crypto',
} as const;

const withPrefixes = (names: readonly string[]) => names.flatMap((name) => [`node:${name}`, name]);

/** The add-ons behind nodejs_compat (rows of protocol/addons.ts's ADDONS). */
export const NODE_ADDONS = [
  // first, so that an import of node:async_hooks alone installs only this small one
  { name: NODEJS_ALS_ADDON, flags: ['nodejs_als'], modules: ['node:async_hooks'] },
  { name: NODEJS_COMPAT_ADDON, flags: ['nodejs_compat', 'nodejs_compat_v2'], modules: withPrefixes(NODE_MODULES.filter((name) => !(name in SEPARATE_NODE_MODULES))) },
  { name: 'nodejs-stream', modules: withPrefixes(['stream', 'stream/promises']), needs: [NODEJS_COMPAT_ADDON] },
  { name: 'nodejs-assert', modules: withPrefixes(['assert', 'assert/strict']), needs: [NODEJS_COMPAT_ADDON] },
  { name: 'nodejs-crypto', modules: withPrefixes(['crypto']), needs: [NODEJS_COMPAT_ADDON] },
  { name: 'nodejs-compat-globals', flags: ['nodejs_compat_v2'], needs: [NODEJS_COMPAT_ADDON] },
  { name: PROCESS_ENV_ADDON, flags: ['nodejs_compat_populate_process_env'], needs: [NODEJS_COMPAT_ADDON] },
] as const;

/**
 * The flags in force for a worker: those it names plus those its compatibility date turns on, as
 * workerd decides them. nodejs_compat from 2024-09-23 means nodejs_compat_v2 (the Buffer and
 * process globals); from 2025-04-01 it fills process.env; from 2026-08-04 both are on by default.
 * The `no_` and `do_not_` flags turn each off.
 */
export function effectiveFlags(date: string | undefined, flags: readonly string[] = []): string[] {
  const on = new Set(flags);
  const since = (day: string) => date !== undefined && date >= day;
  if (since('2026-08-04')) {
    if (!on.has('no_nodejs_compat')) on.add('nodejs_compat');
    if (!on.has('no_nodejs_compat_v2')) on.add('nodejs_compat_v2');
  }
  if (on.has('nodejs_compat') && since('2024-09-23') && !on.has('no_nodejs_compat_v2')) on.add('nodejs_compat_v2');
  if (on.has('nodejs_compat_v2')) on.add('nodejs_compat');
  const compat = on.has('nodejs_compat');
  if (compat && since('2025-04-01') && !on.has('nodejs_compat_do_not_populate_process_env')) on.add('nodejs_compat_populate_process_env');
  if (!compat) on.delete('nodejs_compat_populate_process_env');
  return [...on];
}

/** The add-on serving a supported module, given the worker's flags in force. */
export function nodeModuleAddon(specifier: string, flags: readonly string[]): string | undefined {
  const name = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
  if (!SUPPORTED.has(name)) return undefined;
  if (name === 'async_hooks' && !flags.includes('nodejs_compat') && !flags.includes('nodejs_compat_v2')) return NODEJS_ALS_ADDON;
  return (SEPARATE_NODE_MODULES as Record<string, string>)[name] ?? NODEJS_COMPAT_ADDON;
}
