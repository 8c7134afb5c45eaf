// AbortController and AbortSignal (DOM §3.1-3.2), including AbortSignal.timeout() and
// AbortSignal.any(). The fetch family uses the internal helpers at the bottom: abort algorithms
// (run before the "abort" event, invisible to user code) and dependent signals for Request.
import { DOMException } from './dom-exception.js';
import { EventTarget, Event, defineEventHandler, dispatch, makeTrusted, registerSignalHooks } from './events.js';
import { INTERNAL, checkInternal, requireArgs, setToStringTag } from './idl.js';
import { setTimeout } from '../timers.js';

interface SignalState {
  aborted: boolean;
  reason: unknown;
  algorithms: Set<() => void> | null;
  /** AbortSignal.any() results: they follow their sources and never have dependents. */
  dependent: boolean;
  sources: Set<AbortSignal> | null;
  /**
   * Signals made by any() from this one. The DOM keeps these weakly so a long-lived signal does
   * not pin every Request derived from it; a dependent that has abort listeners or algorithms
   * must stay alive though, so those are also held strongly, in `retained`.
   */
  dependents: Set<WeakRef<AbortSignal>> | null;
  retained: Set<AbortSignal> | null;
}

let stateOf: (signal: AbortSignal) => SignalState;
let isSignal: (value: unknown) => value is AbortSignal;

// The static methods create signals through newAbortSignal() rather than `new AbortSignal`: a
// class that names itself in its body is emitted by esbuild as `class _AbortSignal`, whose
// `.name` is then only right thanks to the build's keepNames.
export class AbortSignal extends EventTarget {
  #s: SignalState = { aborted: false, reason: undefined, algorithms: null, dependent: false, sources: null, dependents: null, retained: null };

  constructor(token?: unknown) {
    checkInternal(token);
    super();
  }

  static {
    stateOf = (signal) => {
      if (!(typeof signal === 'object' && signal !== null && #s in signal)) throw new TypeError('Illegal invocation');
      return signal.#s;
    };
    isSignal = (value): value is AbortSignal => typeof value === 'object' && value !== null && #s in value;
  }

  /** A signal that is already aborted, with `reason` (an AbortError DOMException by default). */
  static abort(reason: unknown = undefined): AbortSignal {
    const signal = newAbortSignal();
    const s = stateOf(signal);
    s.aborted = true;
    s.reason = reason === undefined ? abortError() : reason;
    return signal;
  }

  /** A signal that aborts with a TimeoutError DOMException after `milliseconds`. */
  static timeout(milliseconds: unknown): AbortSignal {
    requireArgs(arguments.length, 1, "Failed to execute 'timeout' on 'AbortSignal'");
    const ms = enforceRangeULongLong(milliseconds);
    const signal = newAbortSignal();
    // The timer belongs to the current invocation (timers.ts), so it is cancelled with it, like
    // workerd, which ties timeouts to the request's I/O context.
    setTimeout(() => signalAbort(signal, new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
    return signal;
  }

  /** A signal that aborts as soon as any of `signals` does, with that signal's reason. */
  static any(signals: unknown): AbortSignal {
    requireArgs(arguments.length, 1, "Failed to execute 'any' on 'AbortSignal'");
    if (signals === null || typeof signals !== 'object' || typeof (signals as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw new TypeError("Failed to execute 'any' on 'AbortSignal': The provided value cannot be converted to a sequence.");
    }
    const list = [...(signals as Iterable<unknown>)];
    for (const signal of list) {
      if (!isAbortSignal(signal)) throw new TypeError("Failed to execute 'any' on 'AbortSignal': Failed to convert value to 'AbortSignal'.");
    }
    return createDependentAbortSignal(list as AbortSignal[]);
  }

  get aborted(): boolean {
    return stateOf(this).aborted;
  }

  get reason(): unknown {
    return stateOf(this).reason;
  }

  throwIfAborted(): void {
    const s = stateOf(this);
    if (s.aborted) throw s.reason;
  }

  declare onabort: ((this: AbortSignal, event: Event) => unknown) | null;
}

defineEventHandler(AbortSignal.prototype, 'abort');
setToStringTag(AbortSignal, 'AbortSignal');

export class AbortController {
  #signal = new AbortSignal(INTERNAL);

  get signal(): AbortSignal {
    return this.#signal;
  }

  abort(reason: unknown = undefined): void {
    signalAbort(this.#signal, reason);
  }
}

setToStringTag(AbortController, 'AbortController');

// --- internals ---------------------------------------------------------------------------------

function abortError(): DOMException {
  return new DOMException('This operation was aborted', 'AbortError');
}

/** WebIDL [EnforceRange] unsigned long long. */
function enforceRangeULongLong(value: unknown): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new TypeError(`Value is not of type 'unsigned long long': ${String(n)} is not finite.`);
  const integer = Math.trunc(n);
  if (integer < 0 || integer > Number.MAX_SAFE_INTEGER) {
    throw new TypeError("Value is outside the 'unsigned long long' value range.");
  }
  return integer;
}

export function isAbortSignal(value: unknown): value is AbortSignal {
  return isSignal(value);
}

/** A new, not yet aborted signal (what `new AbortController().signal` would give). */
export function newAbortSignal(): AbortSignal {
  return new AbortSignal(INTERNAL);
}

/** DOM "signal abort": the reason defaults to an AbortError DOMException. No-op once aborted. */
export function signalAbort(signal: AbortSignal, reason: unknown = undefined): void {
  const s = stateOf(signal);
  if (s.aborted) return;
  s.aborted = true;
  s.reason = reason === undefined ? abortError() : reason;
  const toAbort: AbortSignal[] = [];
  if (s.dependents) {
    for (const ref of s.dependents) {
      const dependent = ref.deref();
      if (!dependent) continue;
      const d = stateOf(dependent);
      if (d.aborted) continue;
      d.aborted = true;
      d.reason = s.reason;
      toAbort.push(dependent);
    }
    s.dependents = null;
    s.retained = null;
  }
  runAbortSteps(signal, s);
  for (const dependent of toAbort) runAbortSteps(dependent, stateOf(dependent));
}

function runAbortSteps(signal: AbortSignal, s: SignalState): void {
  const algorithms = s.algorithms;
  s.algorithms = null;
  if (algorithms) {
    for (const algorithm of algorithms) {
      try {
        algorithm();
      } catch {
        // Abort algorithms are platform code; one failing must not stop the others or the event.
      }
    }
  }
  dispatch(signal, makeTrusted(new Event('abort')));
}

/**
 * Runs `algorithm` (once) when `signal` aborts, before its "abort" event. Returns a function that
 * unregisters it; fetch uses that when the request finishes first.
 */
export function addAbortAlgorithm(signal: AbortSignal, algorithm: () => void): () => void {
  const s = stateOf(signal);
  if (s.aborted) return () => {};
  (s.algorithms ??= new Set()).add(algorithm);
  retain(signal, s);
  return () => {
    s.algorithms?.delete(algorithm);
  };
}

/** DOM "create a dependent abort signal" (AbortSignal.any, and Request's signal). */
export function createDependentAbortSignal(signals: Iterable<AbortSignal>): AbortSignal {
  const result = new AbortSignal(INTERNAL);
  const r = stateOf(result);
  const list = [...signals];
  for (const signal of list) {
    const s = stateOf(signal);
    if (s.aborted) {
      r.aborted = true;
      r.reason = s.reason;
      return result;
    }
  }
  r.dependent = true;
  const link = (source: AbortSignal) => {
    if (r.sources?.has(source)) return;
    (r.sources ??= new Set()).add(source);
    const s = stateOf(source);
    (s.dependents ??= new Set()).add(new WeakRef(result));
    pruneDependents(s);
  };
  for (const signal of list) {
    const s = stateOf(signal);
    if (!s.dependent) link(signal);
    else if (s.sources) for (const source of s.sources) link(source);
  }
  return result;
}

// Drop collected dependents now and then, so a long-lived source does not accumulate WeakRefs.
function pruneDependents(s: SignalState): void {
  const set = s.dependents!;
  if (set.size < 64 || (set.size & (set.size - 1)) !== 0) return; // at 64, 128, 256, ...
  for (const ref of set) if (!ref.deref()) set.delete(ref);
}

/** A dependent signal someone listens to must outlive its last user reference: pin it to its
 *  sources until they abort. */
function retain(signal: AbortSignal, s: SignalState): void {
  if (!s.dependent || !s.sources) return;
  for (const source of s.sources) (stateOf(source).retained ??= new Set()).add(signal);
}

registerSignalHooks({
  isSignal: isAbortSignal,
  aborted: (signal) => stateOf(signal as AbortSignal).aborted,
  addAlgorithm: (signal, algorithm) => addAbortAlgorithm(signal as AbortSignal, algorithm),
  listenerAdded: (signal, type) => {
    if (type === 'abort') retain(signal as AbortSignal, stateOf(signal as AbortSignal));
  },
});
