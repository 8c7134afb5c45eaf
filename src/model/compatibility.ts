// Compatibility flags Cinder honours, and what they turn on. Every other flag changes semantics
// Cinder does not have, so an upload or a wrangler config that names one is refused by name
// rather than run as if the flag were not there.

/** Flags that give a worker Node.js built-in modules (`node:buffer`, ...), as on Workers. */
export const NODEJS_COMPAT_FLAGS = ['nodejs_compat', 'nodejs_compat_v2', 'nodejs_als'] as const;

/** Flags that tune nodejs_compat as on Workers (protocol/node-modules.ts effectiveFlags): whether
 *  process.env holds the text bindings, and turning nodejs_compat off where the date turns it on. */
export const NODEJS_COMPAT_TUNING_FLAGS = ['nodejs_compat_populate_process_env', 'nodejs_compat_do_not_populate_process_env', 'no_nodejs_compat', 'no_nodejs_compat_v2'] as const;

export const SUPPORTED_COMPATIBILITY_FLAGS: readonly string[] = [...NODEJS_COMPAT_FLAGS, ...NODEJS_COMPAT_TUNING_FLAGS];

/** The flags of `flags` Cinder does not support, in their order. */
export function unsupportedFlags(flags: readonly string[]): string[] {
  return flags.filter((flag) => !SUPPORTED_COMPATIBILITY_FLAGS.includes(flag));
}

/** Whether `node:*` modules may be imported: nodejs_als alone offers only node:async_hooks. */
export function nodeModulesAllowed(flags: readonly string[] | undefined): 'all' | 'async_hooks' | 'none' {
  if (!flags) return 'none';
  if (flags.includes('nodejs_compat') || flags.includes('nodejs_compat_v2')) return 'all';
  if (flags.includes('nodejs_als')) return 'async_hooks';
  return 'none';
}

/**
 * The Node.js built-in modules a worker with nodejs_compat can import (as `node:x`, or bare `x`),
 * as Cinder's add-ons provide them (protocol/addons.ts). Workers offers a few more (net, tls,
 * zlib, ...): those are refused at build by name, like the ones Workers does not offer at all.
 */
export const NODE_BUILTIN_MODULES: readonly string[] = [
  'assert', 'assert/strict', 'async_hooks', 'buffer', 'crypto', 'events', 'path', 'path/posix', 'process',
  'stream', 'stream/promises', 'stream/web', 'string_decoder', 'url', 'util', 'util/types',
];

/** Every Node.js built-in module name (what a bare import such as `fs` may mean). */
export const NODE_MODULE_NAMES: readonly string[] = [
  'assert', 'assert/strict', 'async_hooks', 'buffer', 'child_process', 'cluster', 'console', 'constants', 'crypto', 'dgram',
  'diagnostics_channel', 'dns', 'dns/promises', 'domain', 'events', 'fs', 'fs/promises', 'http', 'http2', 'https', 'inspector',
  'module', 'net', 'os', 'path', 'path/posix', 'path/win32', 'perf_hooks', 'process', 'punycode', 'querystring', 'readline',
  'readline/promises', 'repl', 'stream', 'stream/consumers', 'stream/promises', 'stream/web', 'string_decoder', 'sys', 'timers',
  'timers/promises', 'tls', 'trace_events', 'tty', 'url', 'util', 'util/types', 'v8', 'vm', 'wasi', 'worker_threads', 'zlib',
];

/** Why `node:<name>` cannot be imported by a worker with these flags, or null when it can. */
export function nodeModuleRefusal(name: string, flags: readonly string[] | undefined): string | null {
  const allowed = nodeModulesAllowed(flags);
  if (allowed === 'none') return `node:${name} needs the nodejs_compat compatibility flag (add compatibility_flags = ["nodejs_compat"])`;
  if (allowed === 'async_hooks' && name !== 'async_hooks') return `node:${name} needs the nodejs_compat compatibility flag (nodejs_als offers node:async_hooks only)`;
  if (!NODE_BUILTIN_MODULES.includes(name)) return `node:${name} is not available on Cinder (nodejs_compat offers ${NODE_BUILTIN_MODULES.map((m) => `node:${m}`).join(', ')}; see docs/compat.md)`;
  return null;
}
