// What one top-level request (an HTTP request, a cron run) may make the platform do in all, across
// every worker it reaches through service bindings: as on Workers, the invocations of one request
// share its subrequest budget, and the chain of workers is bounded. Without a shared budget a
// worker that binds itself fans out geometrically (30 calls per level, 3 levels: ~28,000
// invocations from one request).

/** Workers invoked for one top-level request, the first included (Cloudflare: 32). */
export const MAX_INVOCATIONS_PER_REQUEST = 32;
/** What a call past the cap throws (the guest throws the same: protocol/request-tree.ts). */
export const TOO_MANY_INVOCATIONS = `Too many worker invocations: one request may invoke at most ${MAX_INVOCATIONS_PER_REQUEST} workers through service bindings.`;
/** How deep a chain of service calls may go (A -> B -> C ...). Never reached before the
 *  invocation cap (a chain of depth d is d + 1 invocations of the request). */
export const MAX_SERVICE_DEPTH = 32;

export class RequestTree {
  /** subrequests (fetches and service calls) made by every invocation of the request */
  subrequests = 0;
  /** invocations started for the request, the top-level one included */
  invocations = 1;

  /** `subrequestLimit`: the top-level worker's, shared by everything the request reaches */
  constructor(readonly subrequestLimit: number) {}

  chargeSubrequest(): void {
    if (++this.subrequests > this.subrequestLimit) {
      throw new TypeError(`Too many subrequests: this request (with the workers it called) may make at most ${this.subrequestLimit}.`);
    }
  }

  /** A service call is about to start another invocation for this request. Checked before the
   *  call's subrequest is charged: a call refused here changes no count (so the guest, which
   *  refuses such calls itself once its allowance is spent, leaves the counts as the host would). */
  chargeInvocation(): void {
    if (this.invocations + 1 > MAX_INVOCATIONS_PER_REQUEST) throw new Error(TOO_MANY_INVOCATIONS);
    this.invocations++;
  }

  /** Invocations the request may still start: handed to each invocation as it starts (its guest
   *  refuses calls past it without crossing; see protocol/request-tree.ts). Never rises. */
  invocationsLeft(): number {
    return Math.max(0, MAX_INVOCATIONS_PER_REQUEST - this.invocations);
  }
}

/** Where an invocation sits in its request: the shared tree and its depth (0: top level). */
export interface InvocationPlace {
  tree: RequestTree;
  depth: number;
}

/** One subrequest (an outbound fetch, a service call) of an invocation, and of its request as a
 *  whole: a TypeError over either limit, as on Workers. */
export function chargeSubrequest(invocation: { subrequests: number; readonly place: InvocationPlace } | undefined, perInvocation: number): void {
  if (!invocation) return;
  invocation.subrequests++;
  if (invocation.subrequests > perInvocation) {
    throw new TypeError(`Too many subrequests: this invocation may make at most ${perInvocation}.`);
  }
  invocation.place.tree.chargeSubrequest();
}
