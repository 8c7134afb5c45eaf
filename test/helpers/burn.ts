// CPU burned by guest code for a given time. The guest's clock stands still while it runs (as on
// Workers), so a worker cannot spin "until Date.now() passes X": it loops a number of times
// measured here, in a bare isolate, beforehand.
import ivm from 'isolated-vm';

export function burnLoop(n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) x = (x * 31 + i) % 1000003;
  return x;
}

/** Source of `burnLoop` for a worker script. */
export const BURN_SOURCE = burnLoop.toString();

/** Iterations of burnLoop that take about `ms` of CPU on this machine now. */
export function burnIterations(ms: number): number {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = isolate.createContextSync();
    context.evalSync(BURN_SOURCE);
    const cost = (n: number) => {
      const before = isolate.cpuTime;
      context.evalSync(`burnLoop(${n})`);
      return Number(isolate.cpuTime - before) / 1e6;
    };
    for (let i = 0; i < 3; i++) cost(200_000); // compile, optimize
    const perIteration = Math.min(cost(1_000_000), cost(1_000_000)) / 1_000_000;
    return Math.max(1, Math.round(ms / Math.max(perIteration, 1e-7)));
  } finally {
    isolate.dispose();
  }
}

/** CPU time of a million burnLoop iterations on the machine where the CPU figures of these tests
 *  were measured (the development machine, 2026-12-06: 4.1-6.4 ms, the low end when it was
 *  quiet). */
const REFERENCE_MS_PER_MILLION = 4.1;

/**
 * How many times slower than that machine this one runs guest code now (never below 1). A test
 * whose claim is "this work fits in the default CPU limit" scales the limit by it: a slower or
 * loaded CI machine is held to the same work, not to the same milliseconds, while this machine
 * is held to the default itself.
 */
export function machineSlowness(): number {
  return Math.max(1, ((50 / burnIterations(50)) * 1e6) / REFERENCE_MS_PER_MILLION);
}
