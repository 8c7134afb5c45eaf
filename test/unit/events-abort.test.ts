// Event, CustomEvent, EventTarget, AbortController and AbortSignal inside a real isolate, against
// the DOM spec's dispatch and abort algorithms (in the manner of WPT dom/events and dom/abort).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

let guest: Guest;
beforeAll(async () => {
  guest = await createGuest();
});
afterAll(() => guest.dispose());

const PRELUDE = `
  const attempt = (f) => { try { f(); return 'no error'; } catch (e) { return { name: e.name, code: e.code, dom: e instanceof DOMException }; } };
`;
const run = <T = unknown>(code: string) => guest.run<T>(PRELUDE + code);
const typeError = { name: 'TypeError', dom: false };

describe('Event', () => {
  it('has the DOM defaults and reflects its init dictionary', async () => {
    expect(
      await run(`const e = new Event('ping'); const f = new Event('pong', { bubbles: 1, cancelable: true, composed: 'y' });
        return [e.type, e.bubbles, e.cancelable, e.composed, e.defaultPrevented, e.eventPhase, e.target, e.currentTarget, e.isTrusted,
          typeof e.timeStamp, e.returnValue, e.cancelBubble, f.bubbles, f.cancelable, f.composed, e.composedPath().length]`),
    ).toEqual(['ping', false, false, false, false, 0, null, null, false, 'number', true, false, true, true, true, 0]);
  });

  it('requires a type and converts it with ToString', async () => {
    expect(await run(`return [attempt(() => new Event()), new Event(undefined).type, new Event(12).type, attempt(() => new Event('x', 1)), attempt(() => Event('x'))]`)).toEqual([
      typeError, 'undefined', '12', typeError, typeError,
    ]);
  });

  it('exposes the phase constants and makes isTrusted an unforgeable own property', async () => {
    expect(
      await run(`const e = new Event('x'); const d = Object.getOwnPropertyDescriptor(e, 'isTrusted');
        return [Event.NONE, Event.CAPTURING_PHASE, Event.AT_TARGET, Event.BUBBLING_PHASE, e.AT_TARGET, typeof d.get, d.configurable,
          d.get === Object.getOwnPropertyDescriptor(new Event('y'), 'isTrusted').get, Object.prototype.toString.call(e)]`),
    ).toEqual([0, 1, 2, 3, 2, 'function', false, true, '[object Event]']);
  });

  it('preventDefault only cancels cancelable events', async () => {
    expect(
      await run(`const a = new Event('a'); a.preventDefault();
        const b = new Event('b', { cancelable: true }); b.preventDefault();
        const c = new Event('c', { cancelable: true }); c.returnValue = false;
        return [a.defaultPrevented, b.defaultPrevented, b.returnValue, c.defaultPrevented]`),
    ).toEqual([false, true, false, true]);
  });

  it('CustomEvent carries detail (null by default) and supports initCustomEvent', async () => {
    expect(
      await run(`const e = new CustomEvent('c', { detail: { n: 1 } }); const d = new CustomEvent('d');
        d.initCustomEvent('renamed', true, true, 7);
        return [e.detail.n, d.detail, d.type, d.bubbles, e instanceof Event, Object.prototype.toString.call(e), attempt(() => new CustomEvent())]`),
    ).toEqual([1, 7, 'renamed', true, true, '[object CustomEvent]', typeError]);
    expect(await run(`return new CustomEvent('x').detail`)).toBeNull();
  });
});

describe('EventTarget dispatch', () => {
  it('calls listeners in order with target, currentTarget, phase and this set, then resets them', async () => {
    expect(
      await run(`const t = new EventTarget(); const seen = [];
        t.addEventListener('x', function (e) { seen.push(['fn', this === t, e.target === t, e.currentTarget === t, e.eventPhase, e.composedPath()[0] === t]); });
        const handler = { handleEvent(e) { seen.push(['obj', this === handler, e.eventPhase]); } };
        t.addEventListener('x', handler);
        const e = new Event('x');
        const result = t.dispatchEvent(e);
        return [seen, result, e.eventPhase, e.currentTarget, e.target === t, e.composedPath().length]`),
    ).toEqual([[['fn', true, true, true, 2, true], ['obj', true, 2]], true, 0, null, true, 0]);
  });

  it('ignores duplicate registrations, but capture and non-capture are distinct', async () => {
    expect(
      await run(`const t = new EventTarget(); let n = 0; const f = () => n++;
        t.addEventListener('x', f); t.addEventListener('x', f); t.addEventListener('x', f, { once: true });
        t.addEventListener('x', f, true); t.addEventListener('x', f, { capture: true });
        t.dispatchEvent(new Event('x'));
        t.removeEventListener('x', f, true); t.dispatchEvent(new Event('x'));
        t.removeEventListener('x', f, { capture: false }); t.dispatchEvent(new Event('x'));
        return n`),
    ).toBe(3);
  });

  it('runs capture listeners before the others at the target', async () => {
    expect(
      await run(`const t = new EventTarget(); const order = [];
        t.addEventListener('x', () => order.push('bubble1'));
        t.addEventListener('x', () => order.push('capture'), true);
        t.addEventListener('x', () => order.push('bubble2'));
        t.dispatchEvent(new Event('x'));
        return order`),
    ).toEqual(['capture', 'bubble1', 'bubble2']);
  });

  it('stopImmediatePropagation stops the remaining listeners; stopPropagation does not at the target', async () => {
    expect(
      await run(`const a = new EventTarget(); const order = [];
        a.addEventListener('x', (e) => { order.push(1); e.stopPropagation(); });
        a.addEventListener('x', () => order.push(2));
        a.dispatchEvent(new Event('x'));
        const b = new EventTarget();
        b.addEventListener('x', (e) => { order.push(3); e.stopImmediatePropagation(); });
        b.addEventListener('x', () => order.push(4));
        b.dispatchEvent(new Event('x'));
        const c = new EventTarget();
        c.addEventListener('x', (e) => { order.push(5); e.stopPropagation(); }, true);
        c.addEventListener('x', () => order.push(6));
        c.dispatchEvent(new Event('x'));
        return order`),
    ).toEqual([1, 2, 3, 5]);
  });

  it('once listeners run once; listeners removed during dispatch are skipped, added ones wait', async () => {
    expect(
      await run(`const t = new EventTarget(); const order = [];
        const late = () => order.push('late');
        const second = () => order.push('second');
        t.addEventListener('x', () => { order.push('first'); t.removeEventListener('x', second); t.addEventListener('x', late); });
        t.addEventListener('x', second);
        t.addEventListener('x', () => order.push('once'), { once: true });
        t.dispatchEvent(new Event('x')); order.push('|'); t.dispatchEvent(new Event('x'));
        return order`),
    ).toEqual(['first', 'once', '|', 'first', 'late']);
  });

  it('passive listeners cannot cancel; dispatchEvent returns whether the default was prevented', async () => {
    expect(
      await run(`const t = new EventTarget();
        t.addEventListener('p', (e) => e.preventDefault(), { passive: true });
        t.addEventListener('c', (e) => e.preventDefault());
        const p = new Event('p', { cancelable: true }), c = new Event('c', { cancelable: true });
        return [t.dispatchEvent(p), p.defaultPrevented, t.dispatchEvent(c), c.defaultPrevented]`),
    ).toEqual([true, false, false, true]);
  });

  it('reports listener exceptions and keeps dispatching', async () => {
    const before = guest.logs.length;
    expect(
      await run(`const t = new EventTarget(); const order = [];
        t.addEventListener('x', () => { throw new Error('listener boom'); });
        t.addEventListener('x', { handleEvent: 42 });
        t.addEventListener('x', () => order.push('after'));
        const result = t.dispatchEvent(new Event('x'));
        return [order, result]`),
    ).toEqual([['after'], true]);
    const reported = guest.logs.slice(before).filter((l) => l.level === 'error').map((l) => l.message.split('\n')[0]);
    expect(reported).toEqual(["Uncaught Error: listener boom", "Uncaught TypeError: 'handleEvent' property of event listener is not a function"]);
  });

  it('rejects re-dispatch during dispatch, non-events and bad callbacks', async () => {
    expect(
      await run(`const t = new EventTarget(); let inner;
        const e = new Event('x');
        t.addEventListener('x', () => { inner = attempt(() => t.dispatchEvent(e)); });
        t.dispatchEvent(e);
        return [inner, attempt(() => t.dispatchEvent({ type: 'x' })), attempt(() => t.addEventListener('x', 5)), attempt(() => t.addEventListener('x')),
          attempt(() => t.addEventListener('x', null)), attempt(() => t.dispatchEvent(e))]`),
    ).toEqual([{ name: 'InvalidStateError', code: 11, dom: true }, typeError, typeError, typeError, 'no error', 'no error']);
  });

  it('removes a listener when its signal aborts, and never adds one for an aborted signal', async () => {
    expect(
      await run(`const t = new EventTarget(); let n = 0; const c = new AbortController();
        t.addEventListener('x', () => n++, { signal: c.signal });
        t.dispatchEvent(new Event('x')); c.abort(); t.dispatchEvent(new Event('x'));
        t.addEventListener('x', () => n += 100, { signal: AbortSignal.abort() });
        t.dispatchEvent(new Event('x'));
        let message; try { t.addEventListener('x', () => {}, { signal: {} }); } catch (e) { message = e.name + ': ' + e.message; }
        return [n, /^TypeError: .*AbortSignal/.test(message)]`),
    ).toEqual([1, true]);
  });

  it('can be subclassed', async () => {
    expect(
      await run(`class Emitter extends EventTarget { fire() { return this.dispatchEvent(new CustomEvent('go', { detail: 'd' })); } }
        const em = new Emitter(); let got;
        em.addEventListener('go', (e) => { got = e.detail; });
        em.fire();
        return [got, em instanceof EventTarget, Object.prototype.toString.call(new EventTarget())]`),
    ).toEqual(['d', true, '[object EventTarget]']);
  });
});

describe('AbortController and AbortSignal', () => {
  it('aborts once with an AbortError DOMException by default, firing one trusted abort event', async () => {
    expect(
      await run(`const c = new AbortController(); const s = c.signal; const events = [];
        s.addEventListener('abort', (e) => events.push([e.type, e.isTrusted, e.target === s, s.aborted]));
        const before = [s.aborted, s.reason];
        c.abort(); const reason = s.reason; c.abort('again');
        return [before, events, reason instanceof DOMException, reason.name, reason.code, s.reason === reason, c.signal === s]`),
    ).toEqual([[false, undefined], [['abort', true, true, true]], true, 'AbortError', 20, true, true]);
  });

  it('keeps a custom reason, and throwIfAborted throws it', async () => {
    expect(
      await run(`const c = new AbortController(); const reason = { why: 'cancelled' };
        const before = attempt(() => c.signal.throwIfAborted());
        c.abort(reason);
        let thrown; try { c.signal.throwIfAborted(); } catch (e) { thrown = e; }
        return [before, thrown === reason, c.signal.reason === reason]`),
    ).toEqual(['no error', true, true]);
  });

  it('onabort is an event handler: called with the event, replaced in place, removed by null', async () => {
    expect(
      await run(`const c = new AbortController(); const order = [];
        c.signal.onabort = () => order.push('first handler');
        c.signal.addEventListener('abort', () => order.push('listener'));
        c.signal.onabort = function (e) { order.push('handler:' + e.type + ':' + (this === c.signal)); };
        const d = new AbortController(); d.signal.onabort = () => order.push('never'); d.signal.onabort = null;
        c.abort(); d.abort();
        return [order, typeof c.signal.onabort, d.signal.onabort]`),
    ).toEqual([['handler:abort:true', 'listener'], 'function', null]);
  });

  it('AbortSignal cannot be constructed; AbortSignal.abort() makes an aborted signal', async () => {
    expect(
      await run(`const s = AbortSignal.abort(); const t = AbortSignal.abort('r');
        return [attempt(() => new AbortSignal()), s.aborted, s.reason.name, t.reason, s instanceof EventTarget,
          Object.prototype.toString.call(s), Object.prototype.toString.call(new AbortController()), AbortSignal.name, AbortController.name]`),
    ).toEqual([typeError, true, 'AbortError', 'r', true, '[object AbortSignal]', '[object AbortController]', 'AbortSignal', 'AbortController']);
  });

  it('AbortSignal.timeout aborts with a TimeoutError after the delay', async () => {
    expect(
      await run(`const s = AbortSignal.timeout(20); const start = Date.now();
        const early = s.aborted;
        await new Promise((resolve) => s.addEventListener('abort', resolve));
        return [early, s.aborted, s.reason instanceof DOMException, s.reason.name, s.reason.code, Date.now() - start >= 15]`),
    ).toEqual([false, true, true, 'TimeoutError', 23, true]);
  });

  it('AbortSignal.timeout enforces an unsigned long long', async () => {
    expect(await run(`return [attempt(() => AbortSignal.timeout(-1)), attempt(() => AbortSignal.timeout(NaN)), attempt(() => AbortSignal.timeout(Infinity)), attempt(() => AbortSignal.timeout()), attempt(() => AbortSignal.timeout(0.5))]`)).toEqual([
      typeError, typeError, typeError, typeError, 'no error',
    ]);
  });

  it('AbortSignal.any follows the first source to abort, with its reason, after the source', async () => {
    expect(
      await run(`const a = new AbortController(), b = new AbortController(); const order = [];
        const any = AbortSignal.any([a.signal, b.signal]);
        any.onabort = () => order.push('any');
        b.signal.onabort = () => order.push('b');
        const early = any.aborted;
        b.abort('from b'); a.abort('from a');
        return [early, any.aborted, any.reason, order]`),
    ).toEqual([false, true, 'from b', ['b', 'any']]);
  });

  it('AbortSignal.any of an aborted signal is aborted at once, and nested any() follows the original sources', async () => {
    expect(
      await run(`const done = AbortSignal.abort('already');
        const immediate = AbortSignal.any([new AbortController().signal, done]);
        const root = new AbortController();
        const inner = AbortSignal.any([root.signal]);
        const outer = AbortSignal.any([inner]);
        let fired = 0; outer.addEventListener('abort', () => fired++);
        root.abort('root');
        return [immediate.aborted, immediate.reason, outer.aborted, outer.reason, fired, AbortSignal.any([]).aborted]`),
    ).toEqual([true, 'already', true, 'root', 1, false]);
  });

  it('AbortSignal.any rejects non-signals and non-iterables', async () => {
    expect(await run(`return [attempt(() => AbortSignal.any([{}])), attempt(() => AbortSignal.any(5)), attempt(() => AbortSignal.any())]`)).toEqual([
      typeError, typeError, typeError,
    ]);
  });

  it('a dependent signal with a listener survives garbage collection; one without does not linger', async () => {
    // Sources hold their dependents weakly (DOM: "dependent signals" is a weak set), except those
    // someone listens to. WeakRefs clear only between jobs, so the GC happens across guest runs.
    await guest.run(`globalThis.gcRoot = new AbortController(); globalThis.gcFired = false;
      AbortSignal.any([gcRoot.signal]).addEventListener('abort', () => { globalThis.gcFired = true; });
      globalThis.gcControl = new WeakRef(AbortSignal.any([gcRoot.signal]));`);
    let cleared = false;
    for (let i = 0; i < 200 && !cleared; i++) {
      cleared = await guest.run<boolean>(`let junk = []; for (let i = 0; i < 100000; i++) junk.push({ i }); junk = null; return gcControl.deref() === undefined;`);
    }
    expect(cleared).toBe(true);
    expect(await guest.run(`gcRoot.abort(); return gcFired;`)).toBe(true);
  });
});
