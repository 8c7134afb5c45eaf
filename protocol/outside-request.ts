// The host's refusal of an op whose invocation is not in flight on the host: the request has ended
// (or the host ended it at a limit) while guest code of it runs on. The host sends it
// (src/runtime/outside-invocation.ts); the guest recognizes it (sandbox/invocation.ts: an
// invocation the host ended stops spending its request's shared invocation allowance), so both
// take the words from here.

/** The host's refusal of `op` made by an invocation it no longer has in flight. */
export function outsideRequestMessage(op: string): string {
  return `${op}: no request of this worker is in flight. I/O after a request has ended is refused; ctx.waitUntil() keeps a request open for work after its response`;
}
