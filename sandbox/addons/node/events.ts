// node:events on the `events` npm package (Node's own EventEmitter, ported), plus what it lacks
// that workerd offers: `on()` (an async iterator over an event), errorMonitor, captureRejections'
// symbol, getEventListeners, setMaxListeners and addAbortListener.
import { DOMException, Event, queueMicrotask, type AbortSignal } from './web.js';
import EventEmitter from 'events';

type Emitter = {
  on(name: string | symbol, fn: (...args: unknown[]) => void): unknown;
  removeListener(name: string | symbol, fn: (...args: unknown[]) => void): unknown;
  listeners(name: string | symbol): unknown[];
  setMaxListeners(n: number): unknown;
};

export const errorMonitor: symbol = Symbol('events.errorMonitor');
export const captureRejectionSymbol: symbol = Symbol.for('nodejs.rejection');

// errorMonitor listeners hear an 'error' before the ordinary ones, as in Node.
const emit = EventEmitter.prototype.emit;
EventEmitter.prototype.emit = function (this: Emitter, type: string | symbol, ...args: unknown[]) {
  if (type === 'error') emit.call(this, errorMonitor, ...args);
  return emit.call(this, type, ...args);
};
EventEmitter.errorMonitor = errorMonitor;
EventEmitter.captureRejectionSymbol = captureRejectionSymbol;

export const once = EventEmitter.once as (emitter: unknown, name: string | symbol, options?: { signal?: AbortSignal }) => Promise<unknown[]>;
export const defaultMaxListeners = EventEmitter.defaultMaxListeners as number;
export const listenerCount = EventEmitter.listenerCount as (emitter: unknown, name: string | symbol) => number;

/** events.on(emitter, name): an async iterator of the argument lists the event is emitted with;
 *  an 'error' event ends it by throwing. */
export function on(emitter: Emitter, event: string | symbol, options: { signal?: AbortSignal } = {}): AsyncIterableIterator<unknown[]> {
  const queued: unknown[][] = [];
  const waiting: { resolve: (r: IteratorResult<unknown[]>) => void; reject: (e: unknown) => void }[] = [];
  let failure: unknown = null;
  let done = false;
  const onEvent = (...args: unknown[]) => {
    const next = waiting.shift();
    if (next) next.resolve({ value: args, done: false });
    else queued.push(args);
  };
  const onError = (error: unknown) => {
    done = true;
    const next = waiting.shift();
    if (next) next.reject(error);
    else failure = error;
    stop();
  };
  const stop = () => {
    emitter.removeListener(event, onEvent);
    if (event !== 'error') emitter.removeListener('error', onError);
    options.signal?.removeEventListener('abort', onAbort);
    for (const next of waiting.splice(0)) next.resolve({ value: undefined as never, done: true });
  };
  const onAbort = () => onError(options.signal?.reason ?? new DOMException('The operation was aborted', 'AbortError'));
  if (options.signal?.aborted) throw options.signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
  emitter.on(event, onEvent);
  if (event !== 'error') emitter.on('error', onError);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const iterator: AsyncIterableIterator<unknown[]> = {
    next() {
      const value = queued.shift();
      if (value) return Promise.resolve({ value, done: false });
      if (failure !== null) {
        const error = failure;
        failure = null;
        return Promise.reject(error);
      }
      if (done) return Promise.resolve({ value: undefined as never, done: true });
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    return() {
      done = true;
      stop();
      return Promise.resolve({ value: undefined as never, done: true });
    },
    throw(error: unknown) {
      done = true;
      stop();
      return Promise.reject(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return iterator;
}

/** The listeners of an EventEmitter, or of an EventTarget (which hides them: an empty list). */
export function getEventListeners(emitter: unknown, name: string | symbol): unknown[] {
  if (emitter && typeof (emitter as Emitter).listeners === 'function') return (emitter as Emitter).listeners(name);
  return [];
}

export function setMaxListeners(n = defaultMaxListeners, ...targets: unknown[]): void {
  for (const target of targets) if (target && typeof (target as Emitter).setMaxListeners === 'function') (target as Emitter).setMaxListeners(n);
}

/** Call `listener` once when `signal` aborts; the returned disposable removes it. */
export function addAbortListener(signal: AbortSignal, listener: (event: Event) => void): object {
  if (signal.aborted) queueMicrotask(() => listener(new Event('abort')));
  else signal.addEventListener('abort', listener, { once: true });
  const dispose = (Symbol as unknown as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose');
  return { [dispose]: () => signal.removeEventListener('abort', listener as never) };
}

EventEmitter.on = on;
EventEmitter.getEventListeners = getEventListeners;
EventEmitter.setMaxListeners = setMaxListeners;
EventEmitter.addAbortListener = addAbortListener;

export { EventEmitter };
export default EventEmitter;
