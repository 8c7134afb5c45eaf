// How many serving processes `cinder serve` starts when `--processes` is not given.
//
// A serving process is more than one busy thread: guest code runs on isolated-vm's threads and V8
// collects on its platform workers, so with its serving thread saturated one process keeps
// ~1.4 cores busy on hello and ~1.9 on the Hono JSON route (the serving thread is 73% and 54% of
// the server's CPU per request; bench/README.md, issue 24 round 6). One process per core therefore
// runs more busy threads than there are cores, and the switching between them costs CPU on every
// request. One process per 1.5 cores, rounded, at least one: 1 on 2 cores, 3 on 4, 5 on 8.
export function defaultServingProcesses(cores: number): number {
  return Math.max(1, Math.round(cores / 1.5));
}
