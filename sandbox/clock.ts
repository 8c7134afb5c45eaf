// The clock guest code sees, as on Workers: it stands still while guest code runs and moves on
// only when something comes in from outside (an event, a host call's answer, a timer). A worker
// cannot time its own execution with it, which is what Spectre-style attacks need. `Date.now()`,
// `new Date()`, `Date()` and `performance.now()` all read it.

const RealDate = Date;
const realNow = Date.now;
const defineProperty = Object.defineProperty;
const construct = Reflect.construct;

let frozen = 0;

/** Something came in from outside: the clock moves to the host's time (never backwards). */
export function advanceClock(): void {
  const now = realNow();
  if (now > frozen) frozen = now;
}

/** The frozen time, in ms since the epoch. */
export function clockNow(): number {
  return frozen;
}

/** A Date constructor reading the frozen clock when asked for "now"; otherwise the real one. */
function FrozenDate(this: unknown, ...args: unknown[]): unknown {
  if (!new.target) return new RealDate(frozen).toString();
  return construct(RealDate, args.length ? args : [frozen], new.target);
}

/** Replace the global Date (called once, when the sandbox bundle is evaluated). */
export function installFrozenDate(global: Record<string, unknown>): void {
  // Same prototype as the real Date: existing dates, instanceof and subclasses behave as before.
  defineProperty(FrozenDate, 'prototype', { value: RealDate.prototype, writable: false, enumerable: false, configurable: false });
  defineProperty(RealDate.prototype, 'constructor', { value: FrozenDate, writable: true, enumerable: false, configurable: true });
  defineProperty(FrozenDate, 'name', { value: 'Date', configurable: true });
  defineProperty(FrozenDate, 'length', { value: 7, configurable: true });
  for (const [name, value] of [['now', function now() { return frozen; }], ['parse', RealDate.parse], ['UTC', RealDate.UTC]] as const) {
    defineProperty(FrozenDate, name, { value, writable: true, enumerable: false, configurable: true });
  }
  defineProperty(global, 'Date', { value: FrozenDate, writable: true, enumerable: false, configurable: true });
}
