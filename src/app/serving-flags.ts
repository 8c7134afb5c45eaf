// The Node flags a serving process starts with: the supervisor's own, plus the serving thread's
// heap shape unless the operator chose one; and the flags the process then puts back for the
// isolates it creates, which must keep the shape they had.
//
// Every request leaves short-lived garbage on the serving thread (node:http's request and
// response, the wire JSON, promises). Under load that heap falls into a cycle once it has had its
// first mark-compact: young objects are promoted and die in old space, so mark-compacts come
// often and each stalls the event loop: that was the warm path's p99. A larger young generation
// keeps a heap that has not had a mark-compact out of the cycle, and a large initial old
// generation delays the first one and makes the later ones rarer. The cost is memory: under
// sustained load the serving process holds more garbage between the rarer collections. The
// figures and the A/Bs (kept and not kept): bench/README.md, "issue 24, round 8".
// Both flags are process-wide V8 flags, read when a heap is made, so the serving process puts
// them back (applyIsolateHeapFlags) before it makes any isolate: a guest isolate keeps the young
// generation it had and V8's own initial old generation, so one that makes garbage does not grow
// towards the serving heap's size before its first full collection.

const SEMI_SPACE = '--max-semi-space-size=8';
const INITIAL_OLD_SPACE = '--initial-old-space-size=256';
/** What guest isolates get back: the young generation they had (round 6), V8's own initial old generation. */
const ISOLATE_SEMI_SPACE = '--max-semi-space-size=4';
const ISOLATE_INITIAL_OLD_SPACE = '--initial-old-space-size=0';
const CHOSEN_SEMI = /^--(max|min)[-_]semi[-_]space[-_]size(=|$)/;
const CHOSEN_OLD = /^--(initial[-_]old[-_]space[-_]size|initial[-_]heap[-_]size)(=|$)/;

/** Set by the supervisor for its serving children: which of the flags it added ("semi", "old"). */
export const ISOLATE_HEAP_FLAGS_ENV = 'CINDER_SERVING_HEAP_FLAGS';

function added(execArgv: readonly string[], nodeOptions: string): { semi: boolean; old: boolean } {
  const all = [...execArgv, ...nodeOptions.split(/\s+/)];
  return { semi: !all.some((flag) => CHOSEN_SEMI.test(flag)), old: !all.some((flag) => CHOSEN_OLD.test(flag)) };
}

/** The serving children's Node flags: the supervisor's, plus the serving heap's shape where the operator chose none. */
export function servingExecArgv(execArgv: readonly string[], nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const add = added(execArgv, nodeOptions);
  return [...execArgv, ...(add.semi ? [SEMI_SPACE] : []), ...(add.old ? [INITIAL_OLD_SPACE] : [])];
}

/** The serving children's environment additions: which flags to put back for isolates. */
export function servingEnv(execArgv: readonly string[], nodeOptions = process.env.NODE_OPTIONS ?? ''): Record<string, string> {
  const add = added(execArgv, nodeOptions);
  const which = [...(add.semi ? ['semi'] : []), ...(add.old ? ['old'] : [])];
  return which.length ? { [ISOLATE_HEAP_FLAGS_ENV]: which.join(',') } : {};
}

/** The flags that put back, for isolates made from now on, what servingExecArgv added (none if it added none). */
export function isolateHeapFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  const which = new Set((env[ISOLATE_HEAP_FLAGS_ENV] ?? '').split(','));
  return [...(which.has('semi') ? [ISOLATE_SEMI_SPACE] : []), ...(which.has('old') ? [ISOLATE_INITIAL_OLD_SPACE] : [])];
}

/** In a serving process, before it makes any isolate: isolates get the heap shape they had. The
 *  serving thread's own heap was made at start-up with the process's flags and keeps them. */
export async function applyIsolateHeapFlags(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const flags = isolateHeapFlags(env);
  if (!flags.length) return;
  const v8 = await import('node:v8');
  v8.setFlagsFromString(flags.join(' '));
}
