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

// Which Node.js modules those flags offer, and the compatibility date's part in it, are
// protocol/node-modules.ts's: the one list the bundler, the loader and the add-ons all read.
