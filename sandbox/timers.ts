// setTimeout/setInterval/clearTimeout/clearInterval/queueMicrotask. V8 alone has no event loop
// timers: the host keeps the clock (op `timer` resolves after the delay, or early with false when
// cleared) and the guest keeps the callbacks, so nothing of the host is handed to guest code.
import { hostCall, hostSend } from './bridge.js';
import { currentInvocation, invocation, runAs } from './invocation.js';
import { refuseInGlobalScope } from './global-scope.js';
import { reportError } from './report-error.js';
import { OPS, SEND_OPS } from '../protocol/wall.js';

interface Timer {
  callback: (...args: unknown[]) => void;
  args: unknown[];
  delay: number;
  repeat: boolean;
  owner: number;
}

const timers = new Map<number, Timer>();
let nextTimerId = 1;

// Browsers and workerd clamp negative/NaN delays to 0 and cap at 2^31-1 ms.
function normalizeDelay(delay: unknown): number {
  const ms = Number(delay);
  if (!Number.isFinite(ms) || ms < 0) return 0;
  return Math.min(Math.floor(ms), 2147483647);
}

function arm(id: number, timer: Timer): void {
  hostCall<boolean>(OPS.timer, id, timer.delay).then(
    (fired) => {
      if (!fired || timers.get(id) !== timer) return;
      if (!timer.repeat) forget(id);
      runAs(timer.owner, () => {
        try {
          timer.callback(...timer.args);
        } catch (error) {
          reportError(error);
        }
      });
      if (timer.repeat && timers.get(id) === timer) arm(id, timer);
    },
    () => forget(id), // the host went away (isolate disposal); nothing to run
  );
}

function forget(id: number): void {
  const timer = timers.get(id);
  if (!timer) return;
  timers.delete(id);
  invocation(timer.owner)?.timers.delete(id);
}

function create(callback: unknown, delay: unknown, args: unknown[], repeat: boolean): number {
  refuseInGlobalScope();
  if (typeof callback !== 'function') {
    throw new TypeError(`${repeat ? 'setInterval' : 'setTimeout'}: callback must be a function`);
  }
  const id = nextTimerId++;
  const timer: Timer = { callback: callback as Timer['callback'], args, delay: normalizeDelay(delay), repeat, owner: currentInvocation() };
  timers.set(id, timer);
  invocation(timer.owner)?.timers.add(id);
  arm(id, timer);
  return id;
}

function clear(id: unknown): void {
  refuseInGlobalScope();
  const key = Number(id);
  if (!timers.has(key)) return;
  forget(key);
  hostSend(SEND_OPS.clearTimer, key);
}

export function setTimeout(callback: unknown, delay?: unknown, ...args: unknown[]): number {
  return create(callback, delay, args, false);
}

export function setInterval(callback: unknown, delay?: unknown, ...args: unknown[]): number {
  return create(callback, delay, args, true);
}

export function clearTimeout(id?: unknown): void {
  clear(id);
}

export function clearInterval(id?: unknown): void {
  clear(id);
}

/** Cancel every timer an invocation left behind (called when it ends, after waitUntil). */
export function cancelTimersOf(owner: number): void {
  const state = invocation(owner);
  if (!state) return;
  for (const id of [...state.timers]) clear(id);
}

export function queueMicrotask(callback: unknown): void {
  if (typeof callback !== 'function') throw new TypeError('queueMicrotask: callback must be a function');
  const owner = currentInvocation();
  Promise.resolve().then(() =>
    runAs(owner, () => {
      try {
        (callback as () => void)();
      } catch (error) {
        reportError(error);
      }
    }),
  );
}
