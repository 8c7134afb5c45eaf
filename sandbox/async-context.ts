// AsyncLocalStorage's storage: V8's continuation-preserved embedder data. V8 copies that value
// into every promise reaction when the reaction is created (an await, a then()) and restores it
// while the reaction runs, so a value set before an await is current again after it, in each
// concurrent request separately. Timers and host calls (fetch, KV, ...) resolve through promises
// made where they were called, so the value follows them too. JavaScript cannot reach this slot:
// the host hands two native functions in before boot (isolated-vm patch 11), and boot takes them
// off the global object before any worker code runs.
//
// Without them (an isolate evaluated inside createSnapshot, where native functions cannot be
// serialized; boot then installs them) the frame lives in a plain variable: exact for
// synchronous run() calls only.
//
// The frame is an immutable Map from storage to value: run() installs a copy with one entry
// changed and puts the previous frame back when the callback returns, so a continuation that
// captured a frame never sees later changes.
import { CONTINUATION_DATA_GLOBAL } from '../protocol/wall.js';

type Frame = ReadonlyMap<object, unknown> | undefined;

let fallbackFrame: Frame;
/** Whether the frame is V8's (patch 11) rather than the plain variable. */
let native = false;
let readFrame: () => Frame = () => fallbackFrame;
let writeFrame: (frame: Frame) => void = (frame) => {
  fallbackFrame = frame;
};

const MapCtor = Map;
const reflectApply = Reflect.apply;
const mapGet = Map.prototype.get;
const mapSet = Map.prototype.set;
const mapHas = Map.prototype.has;
const mapDelete = Map.prototype.delete;

/** Called by boot: take the native pair the host defined, and remove it from the global. */
export function installContinuationData(): boolean {
  const holder = globalThis as Record<string, unknown>;
  const pair = holder[CONTINUATION_DATA_GLOBAL] as { get?: unknown; set?: unknown } | undefined;
  delete holder[CONTINUATION_DATA_GLOBAL];
  if (!pair || typeof pair.get !== 'function' || typeof pair.set !== 'function') return false;
  const get = pair.get as () => unknown;
  const set = pair.set as (value: unknown) => void;
  readFrame = () => {
    const frame = get();
    return frame instanceof MapCtor ? (frame as Frame) : undefined;
  };
  writeFrame = (frame) => set(frame);
  native = true;
  return true;
}

/** Each event from the host starts with no frame (a frame left by code that never restored it
 *  must not leak into another request). */
export function resetFrame(): void {
  writeFrame(undefined);
}

/** The current frame, for AsyncResource and AsyncLocalStorage.snapshot(). */
export function currentFrame(): Frame {
  return readFrame();
}

/** Run fn with `frame` current, then put back the frame that was current before. */
export function runInFrame<R>(frame: Frame, fn: (...args: unknown[]) => R, thisArg: unknown, args: unknown[]): R {
  const previous = readFrame();
  writeFrame(frame);
  try {
    return reflectApply(fn, thisArg, args) as R;
  } finally {
    writeFrame(previous);
  }
}

function withEntry(frame: Frame, key: object, value: unknown, present: boolean): Frame {
  const next = new MapCtor<object, unknown>(frame);
  if (present) reflectApply(mapSet, next, [key, value]);
  else reflectApply(mapDelete, next, [key]);
  return next;
}

// The invocation (request, scheduled event) code runs for is kept in the frame too, under a key
// no worker can reach: then a continuation knows its invocation exactly, however many requests
// interleave in the isolate (sandbox/invocation.ts; without the native frame it falls back to its
// best guess).
const INVOCATION_KEY = Object.freeze({});

/** The invocation the running continuation belongs to, when the native frame knows it. */
export function frameInvocation(): number | undefined {
  if (!native) return undefined;
  const frame = readFrame();
  return frame === undefined ? undefined : (reflectApply(mapGet, frame, [INVOCATION_KEY]) as number | undefined);
}

/** Make `id` the invocation of everything that continues from here (a host entry's start). */
export function enterInvocationFrame(id: number): void {
  if (native) writeFrame(withEntry(readFrame(), INVOCATION_KEY, id, true));
}

/** Run fn (synchronously) as invocation `id`, and what it schedules too. */
export function runInInvocationFrame<R>(id: number, fn: () => R): R {
  if (!native) return fn();
  return runInFrame(withEntry(readFrame(), INVOCATION_KEY, id, true), fn, undefined, []);
}

/** node:async_hooks AsyncLocalStorage, as workerd offers it (no enterWith, no disable hooks). */
export class AsyncLocalStorage<T = unknown> {
  static bind<F extends (...args: unknown[]) => unknown>(fn: F): F {
    if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
    const frame = readFrame();
    return function (this: unknown, ...args: unknown[]) {
      return runInFrame(frame, fn, this, args);
    } as F;
  }

  static snapshot(): <R>(fn: (...args: unknown[]) => R, ...args: unknown[]) => R {
    const frame = readFrame();
    return function <R>(this: unknown, fn: (...args: unknown[]) => R, ...args: unknown[]): R {
      if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
      return runInFrame(frame, fn, this, args);
    };
  }

  getStore(): T | undefined {
    const frame = readFrame();
    return frame === undefined ? undefined : (reflectApply(mapGet, frame, [this]) as T | undefined);
  }

  run<R>(store: T, callback: (...args: unknown[]) => R, ...args: unknown[]): R {
    if (typeof callback !== 'function') throw new TypeError('The "callback" argument must be of type function');
    return runInFrame(withEntry(readFrame(), this, store, true), callback, undefined, args);
  }

  exit<R>(callback: (...args: unknown[]) => R, ...args: unknown[]): R {
    if (typeof callback !== 'function') throw new TypeError('The "callback" argument must be of type function');
    const frame = readFrame();
    if (frame === undefined || !reflectApply(mapHas, frame, [this])) return reflectApply(callback, undefined, args) as R;
    return runInFrame(withEntry(frame, this, undefined, false), callback, undefined, args);
  }

  get [Symbol.toStringTag](): string {
    return 'AsyncLocalStorage';
  }
}

/** node:async_hooks AsyncResource: carries the frame current at its construction. */
export class AsyncResource {
  readonly #frame: Frame;
  readonly #type: string;

  constructor(type: string, _options?: unknown) {
    if (typeof type !== 'string') throw new TypeError('The "type" argument must be of type string');
    this.#type = type;
    this.#frame = readFrame();
  }

  static bind<F extends (...args: unknown[]) => unknown>(fn: F, type?: string, thisArg?: unknown): F {
    return new AsyncResource(type ?? (fn.name || 'bound-anonymous-fn')).bind(fn, thisArg);
  }

  bind<F extends (...args: unknown[]) => unknown>(fn: F, thisArg?: unknown): F {
    if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
    const frame = this.#frame;
    const bound = function (this: unknown, ...args: unknown[]) {
      return runInFrame(frame, fn, thisArg === undefined ? this : thisArg, args);
    };
    return bound as F;
  }

  runInAsyncScope<R>(fn: (...args: unknown[]) => R, thisArg?: unknown, ...args: unknown[]): R {
    if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
    return runInFrame(this.#frame, fn, thisArg, args);
  }

  emitDestroy(): this {
    return this;
  }

  asyncId(): number {
    return 0;
  }

  triggerAsyncId(): number {
    return 0;
  }

  get type(): string {
    return this.#type;
  }
}
