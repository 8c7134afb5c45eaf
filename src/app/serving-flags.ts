// The Node flags a serving process starts with: the supervisor's own, plus a smaller young
// generation for the serving thread's heap unless the operator chose one.
//
// Every request leaves short-lived garbage on the serving thread (node:http's request and
// response, the wire JSON, promises). With V8's default semi-space here (16 MB) that heap was
// scavenged ~15 times a second under load, each pause ~6 ms of the serving thread: every request
// in flight waits it out, which is most of the warm p99. At 4 MB the scavenges come 4x as often
// but the young generation stays in the CPU's caches: in interleaved A/Bs (bench/README.md, issue
// 24 round 6) p99 fell 12.3 -> 10.4 ms on the Hono route and 10.4 -> 8.4 ms on hello, and CPU per
// request fell 10% and 4%; 64 MB made p99 worse (16.5 ms), 2 MB was no better than 4 and 1 MB
// was worse (CPU +20%).
// The flag is process-wide, so it is also each isolate's ceiling: isolated-vm gives an isolate of
// 128 MB a young generation under 1 MB, and V8 lets a busy isolate's grow to the flag's size (an
// allocation loop ended at 24 MB of heap instead of 10.9 and used 43% less CPU). An isolate starts
// at the same initial size, so idle ones cost no more; a busy one may hold up to ~8 MB more.

const SEMI_SPACE = '--max-semi-space-size=4';
const CHOSEN = /^--(max|min)[-_]semi[-_]space[-_]size(=|$)/;

export function servingExecArgv(execArgv: readonly string[], nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const chosen = execArgv.some((flag) => CHOSEN.test(flag)) || nodeOptions.split(/\s+/).some((flag) => CHOSEN.test(flag));
  return chosen ? [...execArgv] : [...execArgv, SEMI_SPACE];
}
