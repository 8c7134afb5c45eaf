// The request's invocation allowance as both halves of a service binding see it. The host counts
// the invocations of one top-level request (src/model/request-tree.ts, the authority); each
// invocation is handed, as it starts, how many the request may still start: an upper bound, since
// other invocations of the request spend from the same allowance. The guest counts its own calls
// against it and refuses the ones the host would refuse at the cap, with the host's error, without
// crossing the wall: a worker that fans out 30 calls at once no longer sends 30 calls to be refused.

/** Workers invoked for one top-level request, the first included (Cloudflare: 32); the same
 *  figure as src/model/request-tree.ts (a unit test holds them equal). */
export const MAX_INVOCATIONS_PER_REQUEST = 32;

/** What a call past the cap throws, on either side of the wall. */
export const TOO_MANY_INVOCATIONS = `Too many worker invocations: one request may invoke at most ${MAX_INVOCATIONS_PER_REQUEST} workers through service bindings.`;
