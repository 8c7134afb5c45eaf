// While a worker's top level runs (its global scope), Workers refuse what needs a request to
// belong to: starting I/O, setting or clearing a timer, and making random values. workerd throws
// "Disallowed operation called within global scope"; so does Cinder, with the same words, for
// fetch(), the timer functions and crypto.getRandomValues()/randomUUID(). Without it a timer or a
// fetch awaited at the top level never settled (the load then failed with an unrelated
// ReferenceError), and random values made there would be baked into the version's snapshot,
// the same in every isolate born from it.
import { GLOBAL_SCOPE_MESSAGE } from '../protocol/global-scope.js';

const ErrorCtor = Error;

export { GLOBAL_SCOPE_MESSAGE };

let inGlobalScope = true;

/** Called once the worker's top level has run (dispatch.ts installWorkerEntry). The pool's warm-up
 *  (before it) serves a built-in handler that uses none of the refused operations. */
export function leaveGlobalScope(): void {
  inGlobalScope = false;
}

/** Throws workerd's error when called from the worker's top level. */
export function refuseInGlobalScope(): void {
  if (inGlobalScope) throw new ErrorCtor(GLOBAL_SCOPE_MESSAGE);
}
