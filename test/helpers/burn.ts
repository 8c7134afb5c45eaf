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
