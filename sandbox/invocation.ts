// Which invocation (request or scheduled event) guest code is running for. An isolate serves many
// requests at once. The invocation rides in V8's continuation-preserved embedder data
// (async-context.ts), so every await, then() and timer callback knows its own exactly. Without it
// (an isolated-vm without patch 11) this is exact for synchronous entry and for timer callbacks
// and a best guess across other awaits, and the host narrows it further when only one invocation
// is in flight.

import { sentCount } from './bridge.js';
import { enterInvocationFrame, frameInvocation, runInInvocationFrame } from './async-context.js';

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
}

const live = new Map<number, InvocationState>();
let current = 0;

export function beginInvocation(id: number): InvocationState {
  const state: InvocationState = { id, waitUntil: [], timers: new Set(), responded: false, sentAtStart: sentCount(), logUsed: 0, logDroppedLines: 0, logDroppedChars: 0, logDropReported: false };
  live.set(id, state);
  return state;
}

export function endInvocation(id: number): InvocationState | undefined {
  const state = live.get(id);
  live.delete(id);
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
