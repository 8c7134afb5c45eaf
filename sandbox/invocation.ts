// Which invocation (request or scheduled event) guest code is running for. An isolate serves many
// requests at once. The invocation rides in V8's continuation-preserved embedder data
// (async-context.ts), so every await, then() and timer callback knows its own exactly. Without it
// (an isolated-vm without patch 11) this is exact for synchronous entry and for timer callbacks
// and a best guess across other awaits, and the host narrows it further when only one invocation
// is in flight.

import { sentCount } from './bridge.js';
import { enterInvocationFrame, frameInvocation, runInInvocationFrame } from './async-context.js';
import { MAX_INVOCATIONS_PER_REQUEST, TOO_MANY_INVOCATIONS } from '../protocol/request-tree.js';
import { outsideRequestMessage } from '../protocol/outside-request.js';

export interface InvocationState {
  id: number;
  /** promises passed to ctx.waitUntil / event.waitUntil */
  waitUntil: Promise<unknown>[];
  /** timers this invocation created and that have not fired or been cleared */
  timers: Set<number>;
  /** true once the response (or scheduled result) has been handed back */
  responded: boolean;
  /** the bridge's sent-message count when the invocation began (see dispatch's finish) */
  sentAtStart: number;
  /** ctx.passThroughOnException() was called: an exception forwards the request to the origin */
  passThrough?: boolean;
  /** console budget spent so far (protocol/console-limits.ts) */
  logUsed: number;
  /** console lines dropped over the budget and not yet reported to the host, and their length */
  logDroppedLines: number;
  logDroppedChars: number;
  /** whether any drop was reported (the first is reported at once: the host notes it in the log) */
  logDropReported: boolean;
  /** invocations the request may still start, as handed in when this one began, less the calls
   *  sent since (an upper bound: see protocol/request-tree.ts); undefined when not handed in */
  invocationsLeft: number | undefined;
  /** the request this invocation serves, as this isolate numbers requests (0: not numbered, the
   *  request's first invocation, which counts alone) */
  request: number;
  /** the host refused one of its calls at the cap */
  spent?: boolean;
  /** the host answered one of its calls as made outside of a request: the host ended it (a limit)
   *  while its code runs on, so its calls are not counted there and its count proves nothing */
  endedOnHost?: boolean;
}

/**
 * What this isolate knows of each request's invocation allowance: the invocations of it running
 * here (a worker that binds itself serves many invocations of one request in one isolate), and
 * whether the host refused a call at the cap. Each invocation's count is an upper bound on what
 * the request has left once its calls sent so far are counted; the least of them bounds every
 * call any of them sends next, so the first invocation to spend the allowance spends it for all.
 */
interface RequestAllowance {
  running: Set<InvocationState>;
  spent: boolean;
}

const requests = new Map<number, RequestAllowance>();
/** Requests whose allowance the host said was spent, kept after their last invocation here ends
 *  (another of theirs may begin here later); the most recent few, in the order they were spent. */
const spentRequests = new Set<number>();
const SPENT_REQUESTS_KEPT = 64;

const live = new Map<number, InvocationState>();
let current = 0;

/** `invocationsLeft`, `request`: the request's invocation allowance as the host hands it in (a
 *  count), and which request it is. Not handed in: the invocation is its request's first (an HTTP
 *  request, a cron run, a queue batch, a socket event), which may start all but itself. */
export function beginInvocation(id: number, invocationsLeft: unknown = MAX_INVOCATIONS_PER_REQUEST - 1, request?: unknown): InvocationState {
  const counted = typeof invocationsLeft === 'number' && Number.isSafeInteger(invocationsLeft) && invocationsLeft >= 0;
  // (no request number: the request's first invocation, which counts alone until it has callees)
  const pooled = counted && typeof request === 'number' && request > 0;
  const state: InvocationState = { id, waitUntil: [], timers: new Set(), responded: false, sentAtStart: sentCount(), logUsed: 0, logDroppedLines: 0, logDroppedChars: 0, logDropReported: false, invocationsLeft: counted ? invocationsLeft : undefined, request: pooled ? request : 0 };
  live.set(id, state);
  if (pooled) {
    let allowance = requests.get(request);
    if (!allowance) requests.set(request, (allowance = { running: new Set(), spent: spentRequests.has(request) }));
    allowance.running.add(state);
  }
  return state;
}

export function endInvocation(id: number): InvocationState | undefined {
  const state = live.get(id);
  live.delete(id);
  if (state && state.request > 0) {
    const allowance = requests.get(state.request);
    allowance?.running.delete(state);
    if (allowance?.running.size === 0) requests.delete(state.request);
  }
  if (current === id) current = 0;
  return state;
}

export function invocation(id: number): InvocationState | undefined {
  return live.get(id);
}

export function currentInvocation(): number {
  return frameInvocation() ?? current;
}

/** Run fn with `id` as the current invocation (sync part only). */
export function runAs<T>(id: number, fn: () => T): T {
  const previous = current;
  current = id;
  try {
    return runInInvocationFrame(id, fn);
  } finally {
    current = previous;
  }
}

/** Make `id` current without restoring: used at the start of an async dispatch. */
export function enter(id: number): void {
  current = id;
  enterInvocationFrame(id);
}

/**
 * A call that starts another invocation of this request (a service binding's fetch or RPC) is
 * about to cross: past the allowance it throws the error the host would (protocol/request-tree.ts),
 * and the call never crosses; otherwise it is counted. Answers the invocation's state, for
 * `refusedOnHost` if the host refuses the call anyway (other invocations spent the rest).
 */
export function spendInvocation(): InvocationState | undefined {
  const state = live.get(currentInvocation());
  if (state?.invocationsLeft === undefined || state.endedOnHost) return undefined;
  const allowance = state.request > 0 ? requests.get(state.request) : undefined;
  if (state.spent || allowance?.spent) throw new Error(TOO_MANY_INVOCATIONS);
  if (allowance) {
    for (const other of allowance.running) if (!other.endedOnHost && other.invocationsLeft! <= 0) throw new Error(TOO_MANY_INVOCATIONS);
  } else if (state.invocationsLeft <= 0) {
    throw new Error(TOO_MANY_INVOCATIONS);
  }
  state.invocationsLeft!--;
  return state;
}

/** The host refused a counted call (`op`): at the request's invocation cap (the allowance never
 *  grows back), or because the host had ended the invocation (its calls are not counted there: the
 *  host refuses an op of an invocation it no longer has in flight with protocol/outside-request.ts's
 *  words, src/runtime/outside-invocation.ts). */
export function refusedOnHost(state: InvocationState | undefined, error: unknown, op: string): void {
  if (!state) return;
  const message = String((error as Error | null)?.message);
  if (message === TOO_MANY_INVOCATIONS) {
    state.spent = true;
    if (state.request === 0) return;
    const allowance = requests.get(state.request);
    if (allowance) allowance.spent = true;
    if (!spentRequests.has(state.request)) {
      spentRequests.add(state.request);
      if (spentRequests.size > SPENT_REQUESTS_KEPT) spentRequests.delete(spentRequests.values().next().value!);
    }
  } else if (message === outsideRequestMessage(op)) {
    state.endedOnHost = true;
  }
}
