// Event, CustomEvent and EventTarget (DOM §2). There is no tree here, so an event's path is just
// its target: capture listeners run first, then the others, both in the AT_TARGET phase (the
// order the DOM spec and browsers use since 2021). Listener exceptions are reported (logged as
// "Uncaught ...") and dispatch carries on, as the spec's "report an exception" requires.
import { DOMException } from './dom-exception.js';
import { requireArgs, setToStringTag, toDictionary, toDOMString } from './idl.js';
import { reportError } from '../report-error.js';

// --- Event -------------------------------------------------------------------------------------

interface EventState {
  type: string;
  bubbles: boolean;
  cancelable: boolean;
  composed: boolean;
  target: EventTarget | null;
  currentTarget: EventTarget | null;
  phase: number;
  canceled: boolean;
  stopPropagation: boolean;
  stopImmediatePropagation: boolean;
  inPassiveListener: boolean;
  dispatching: boolean;
  initialized: boolean;
  trusted: boolean;
  timeStamp: number;
}

let stateOf: (event: Event) => EventState;

function setCanceled(s: EventState): void {
  if (s.cancelable && !s.inPassiveListener) s.canceled = true;
}

// isTrusted is [LegacyUnforgeable]: an own accessor on every event, sharing one getter function.
const isTrustedDescriptor: PropertyDescriptor = {
  get: function isTrusted(this: Event): boolean {
    return stateOf(this).trusted;
  },
  enumerable: true,
  configurable: false,
};

export class Event {
  #s: EventState;

  constructor(type: unknown, eventInitDict: unknown = undefined) {
    requireArgs(arguments.length, 1, "Failed to construct 'Event'");
    const name = toDOMString(type);
    const init = toDictionary(eventInitDict, "Failed to construct 'Event'");
    this.#s = {
      type: name,
      bubbles: Boolean(init.bubbles),
      cancelable: Boolean(init.cancelable),
      composed: Boolean(init.composed),
      target: null,
      currentTarget: null,
      phase: 0,
      canceled: false,
      stopPropagation: false,
      stopImmediatePropagation: false,
      inPassiveListener: false,
      dispatching: false,
      initialized: true,
      trusted: false,
      // Relative to the time origin, like performance.now(); Cinder's origin is 0 (see
      // performance.ts), so this is the wall clock in milliseconds, as in workerd.
      timeStamp: Date.now(),
    };
    Object.defineProperty(this, 'isTrusted', isTrustedDescriptor);
  }

  static {
    stateOf = (event) => {
      if (!(typeof event === 'object' && event !== null && #s in event)) throw new TypeError('Illegal invocation');
      return event.#s;
    };
  }

  get type(): string {
    return this.#s.type;
  }
  get target(): EventTarget | null {
    return this.#s.target;
  }
  /** Legacy alias of target. */
  get srcElement(): EventTarget | null {
    return this.#s.target;
  }
  get currentTarget(): EventTarget | null {
    return this.#s.currentTarget;
  }
  get eventPhase(): number {
    return this.#s.phase;
  }
  get bubbles(): boolean {
    return this.#s.bubbles;
  }
  get cancelable(): boolean {
    return this.#s.cancelable;
  }
  get composed(): boolean {
    return this.#s.composed;
  }
  get defaultPrevented(): boolean {
    return this.#s.canceled;
  }
  get timeStamp(): number {
    return this.#s.timeStamp;
  }

  /** The targets the event travels through: only its target here, and only while dispatching. */
  composedPath(): EventTarget[] {
    const s = this.#s;
    return s.dispatching && s.currentTarget ? [s.currentTarget] : [];
  }

  stopPropagation(): void {
    this.#s.stopPropagation = true;
  }
  stopImmediatePropagation(): void {
    this.#s.stopPropagation = true;
    this.#s.stopImmediatePropagation = true;
  }
  get cancelBubble(): boolean {
    return this.#s.stopPropagation;
  }
  set cancelBubble(value: boolean) {
    if (value) this.#s.stopPropagation = true;
  }

  preventDefault(): void {
    setCanceled(this.#s);
  }
  get returnValue(): boolean {
    return !this.#s.canceled;
  }
  set returnValue(value: boolean) {
    if (!value) setCanceled(this.#s);
  }

  /** Legacy re-initialisation; a no-op while the event is being dispatched. */
  initEvent(type: unknown, bubbles: unknown = false, cancelable: unknown = false): void {
    requireArgs(arguments.length, 1, "Failed to execute 'initEvent' on 'Event'");
    const s = this.#s;
    if (s.dispatching) return;
    s.initialized = true;
    s.stopPropagation = s.stopImmediatePropagation = s.canceled = false;
    s.trusted = false;
    s.target = null;
    s.type = toDOMString(type);
    s.bubbles = Boolean(bubbles);
    s.cancelable = Boolean(cancelable);
  }

  declare static readonly NONE: 0;
  declare static readonly CAPTURING_PHASE: 1;
  declare static readonly AT_TARGET: 2;
  declare static readonly BUBBLING_PHASE: 3;
  declare readonly NONE: 0;
  declare readonly CAPTURING_PHASE: 1;
  declare readonly AT_TARGET: 2;
  declare readonly BUBBLING_PHASE: 3;
  declare readonly isTrusted: boolean;
}

setToStringTag(Event, 'Event');
for (const [name, value] of [['NONE', 0], ['CAPTURING_PHASE', 1], ['AT_TARGET', 2], ['BUBBLING_PHASE', 3]] as const) {
  const descriptor = { value, enumerable: true, writable: false, configurable: false };
  Object.defineProperty(Event, name, descriptor);
  Object.defineProperty(Event.prototype, name, descriptor);
}

/** Marks an event the platform itself fires (e.g. AbortSignal's "abort") as trusted. */
export function makeTrusted<E extends Event>(event: E): E {
  stateOf(event).trusted = true;
  return event;
}

export class CustomEvent<T = unknown> extends Event {
  #detail: T | null;

  constructor(type: unknown, eventInitDict: unknown = undefined) {
    requireArgs(arguments.length, 1, "Failed to construct 'CustomEvent'");
    super(type, eventInitDict);
    const init = toDictionary(eventInitDict, "Failed to construct 'CustomEvent'");
    this.#detail = (init.detail === undefined ? null : init.detail) as T | null;
  }

  get detail(): T | null {
    return this.#detail;
  }

  initCustomEvent(type: unknown, bubbles: unknown = false, cancelable: unknown = false, detail: unknown = null): void {
    requireArgs(arguments.length, 1, "Failed to execute 'initCustomEvent' on 'CustomEvent'");
    if (stateOf(this).dispatching) return;
    this.initEvent(type, bubbles, cancelable);
    this.#detail = detail as T | null;
  }
}

setToStringTag(CustomEvent, 'CustomEvent');

// --- EventTarget -------------------------------------------------------------------------------

type Callback = ((this: unknown, event: Event) => unknown) | { handleEvent?: unknown };

interface Listener {
  callback: Callback;
  capture: boolean;
  passive: boolean;
  once: boolean;
  /** set when removed, so a dispatch holding a copy of the list skips it */
  removed: boolean;
}

interface HandlerSlot {
  value: unknown;
  listener: Listener;
}

interface TargetState {
  listeners: Map<string, Listener[]> | null;
  handlers: Map<string, HandlerSlot> | null;
}

/**
 * What EventTarget needs to know about AbortSignal, registered by abort.ts. (abort.ts imports
 * this module for EventTarget, so this module cannot import it back.)
 */
export interface SignalHooks {
  isSignal(value: unknown): boolean;
  aborted(signal: unknown): boolean;
  /** Runs `algorithm` when the signal aborts; returns a function that unregisters it. */
  addAlgorithm(signal: unknown, algorithm: () => void): () => void;
  /** Told when a listener for `type` is added to a signal (keeps dependent signals alive). */
  listenerAdded(signal: unknown, type: string): void;
}

let signalHooks: SignalHooks | null = null;

export function registerSignalHooks(hooks: SignalHooks): void {
  signalHooks = hooks;
}

let targetStateOf: (target: EventTarget) => TargetState;

function flattenCapture(options: unknown): boolean {
  if (typeof options === 'boolean') return options;
  if (options === undefined || options === null) return false;
  return Boolean(toDictionary(options, "Failed to execute 'addEventListener' on 'EventTarget'").capture);
}

function checkCallback(callback: unknown, method: string): Callback | null {
  if (callback === null || callback === undefined) return null;
  if (typeof callback !== 'function' && typeof callback !== 'object') {
    throw new TypeError(`Failed to execute '${method}' on 'EventTarget': parameter 2 is not of type 'EventListener'.`);
  }
  return callback as Callback;
}

function findListener(list: Listener[] | undefined, callback: Callback, capture: boolean): number {
  if (!list) return -1;
  for (let i = 0; i < list.length; i++) {
    if (list[i].callback === callback && list[i].capture === capture) return i;
  }
  return -1;
}

function removeListener(state: TargetState, type: string, listener: Listener): void {
  listener.removed = true;
  const list = state.listeners?.get(type);
  if (!list) return;
  const index = list.indexOf(listener);
  if (index >= 0) list.splice(index, 1);
  if (list.length === 0) state.listeners!.delete(type);
}

export class EventTarget {
  // Allocated lazily: most targets (every Request's AbortSignal) never get a listener.
  #t: TargetState = { listeners: null, handlers: null };

  static {
    targetStateOf = (target) => {
      if (!(typeof target === 'object' && target !== null && #t in target)) throw new TypeError('Illegal invocation');
      return target.#t;
    };
  }

  addEventListener(type: unknown, callback: unknown, options: unknown = undefined): void {
    requireArgs(arguments.length, 2, "Failed to execute 'addEventListener' on 'EventTarget'");
    const state = targetStateOf(this);
    const name = toDOMString(type);
    const cb = checkCallback(callback, 'addEventListener');
    // "Flatten more": dictionary members are read in lexicographic order.
    let capture = false;
    let once = false;
    let passive = false;
    let signal: unknown;
    if (typeof options === 'boolean') capture = options;
    else if (options !== undefined && options !== null) {
      const dict = toDictionary(options, "Failed to execute 'addEventListener' on 'EventTarget'");
      capture = Boolean(dict.capture);
      once = Boolean(dict.once);
      passive = Boolean(dict.passive);
      signal = dict.signal;
      if (signal !== undefined && !signalHooks?.isSignal(signal)) {
        throw new TypeError("Failed to execute 'addEventListener' on 'EventTarget': member signal is not of type 'AbortSignal'.");
      }
    }
    if (signal !== undefined && signalHooks!.aborted(signal)) return;
    if (!cb) return;
    const listeners = (state.listeners ??= new Map());
    let list = listeners.get(name);
    if (findListener(list, cb, capture) >= 0) return;
    const listener: Listener = { callback: cb, capture, passive, once, removed: false };
    if (!list) listeners.set(name, (list = []));
    list.push(listener);
    if (signal !== undefined) signalHooks!.addAlgorithm(signal, () => removeListener(state, name, listener));
    if (signalHooks?.isSignal(this)) signalHooks.listenerAdded(this, name);
  }

  removeEventListener(type: unknown, callback: unknown, options: unknown = undefined): void {
    requireArgs(arguments.length, 2, "Failed to execute 'removeEventListener' on 'EventTarget'");
    const state = targetStateOf(this);
    const name = toDOMString(type);
    const cb = checkCallback(callback, 'removeEventListener');
    const capture = flattenCapture(options);
    if (!cb) return;
    const list = state.listeners?.get(name);
    const index = findListener(list, cb, capture);
    if (index >= 0) removeListener(state, name, list![index]);
  }

  dispatchEvent(event: unknown): boolean {
    requireArgs(arguments.length, 1, "Failed to execute 'dispatchEvent' on 'EventTarget'");
    if (!(event instanceof Event)) {
      throw new TypeError("Failed to execute 'dispatchEvent' on 'EventTarget': parameter 1 is not of type 'Event'.");
    }
    const s = stateOf(event);
    if (s.dispatching || !s.initialized) {
      throw new DOMException("Failed to execute 'dispatchEvent' on 'EventTarget': The event is already being dispatched.", 'InvalidStateError');
    }
    s.trusted = false;
    return dispatch(this, event);
  }
}

setToStringTag(EventTarget, 'EventTarget');

/** The DOM "dispatch" algorithm for a target outside any tree. Also used for trusted events. */
export function dispatch(target: EventTarget, event: Event): boolean {
  const s = stateOf(event);
  const state = targetStateOf(target);
  s.dispatching = true;
  s.target = target;
  s.currentTarget = target;
  s.phase = 2; // AT_TARGET: the target is the whole path
  try {
    // Capture listeners first, then the rest; each pass works on a snapshot of the list, so
    // listeners added during dispatch wait for the next pass or event.
    if (!s.stopPropagation) invoke(target, state, event, s, true);
    if (!s.stopPropagation) invoke(target, state, event, s, false);
  } finally {
    s.phase = 0;
    s.currentTarget = null;
    s.dispatching = false;
    s.stopPropagation = false;
    s.stopImmediatePropagation = false;
  }
  return !s.canceled;
}

function invoke(target: EventTarget, state: TargetState, event: Event, s: EventState, capture: boolean): void {
  const list = state.listeners?.get(s.type);
  if (!list) return;
  for (const listener of list.slice()) {
    if (listener.removed || listener.capture !== capture) continue;
    if (listener.once) removeListener(state, s.type, listener);
    if (listener.passive) s.inPassiveListener = true;
    try {
      const callback = listener.callback;
      if (typeof callback === 'function') {
        callback.call(target, event);
      } else {
        // Callback interfaces look handleEvent up at every call.
        const handleEvent = callback.handleEvent;
        if (typeof handleEvent !== 'function') throw new TypeError("'handleEvent' property of event listener is not a function");
        handleEvent.call(callback, event);
      }
    } catch (error) {
      reportError(error);
    }
    s.inPassiveListener = false;
    if (s.stopImmediatePropagation) return;
  }
}

// --- event handler attributes (onabort, ...) ---------------------------------------------------

/**
 * Defines `on<type>` on an interface prototype with HTML's event handler semantics: the handler
 * takes its place among the listeners when first set, keeps it when replaced, leaves when set to
 * null, and returning false from it cancels the event.
 */
export function defineEventHandler(proto: object, type: string): void {
  Object.defineProperty(proto, `on${type}`, {
    get(this: EventTarget): unknown {
      return targetStateOf(this).handlers?.get(type)?.value ?? null;
    },
    set(this: EventTarget, value: unknown) {
      const state = targetStateOf(this);
      // [LegacyTreatNonObjectAsNull]: any object is kept (and fails when called); the rest is null.
      const handler = (typeof value === 'object' && value !== null) || typeof value === 'function' ? value : null;
      const handlers = (state.handlers ??= new Map());
      const slot = handlers.get(type);
      if (handler === null) {
        if (slot) {
          removeListener(state, type, slot.listener);
          handlers.delete(type);
        }
        return;
      }
      if (slot) {
        slot.value = handler;
        return;
      }
      const target = this;
      const newSlot: HandlerSlot = {
        value: handler,
        listener: {
          callback: function (event: Event) {
            const current = newSlot.value;
            if (typeof current !== 'function') throw new TypeError(`on${type} handler is not a function`);
            if (current.call(target, event) === false) setCanceled(stateOf(event));
          },
          capture: false,
          passive: false,
          once: false,
          removed: false,
        },
      };
      handlers.set(type, newSlot);
      const listeners = (state.listeners ??= new Map());
      let list = listeners.get(type);
      if (!list) listeners.set(type, (list = []));
      list.push(newSlot.listener);
      if (signalHooks?.isSignal(this)) signalHooks.listenerAdded(this, type);
    },
    enumerable: true,
    configurable: true,
  });
}
