// isolated-vm patch 13: an isolate's `copyLimit` bounds every serialized copy made in it, inside
// V8's serializer, whatever the guest's own count saw. These drive the addon directly (the server
// tests are in wall-copies.test.ts): the bound is exact, getters that grow a value while it is
// copied are refused before the host holds it, an isolate without the option copies as before,
// and Proxies are refused by V8 itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ivm from '../../src/runtime/ivm.js';

const LIMIT = 1024 * 1024;

type Spawner = ivm.Isolate & { spawnIsolate(options: ivm.IsolateOptions & { copyLimit?: number }): Promise<ivm.Isolate> };

/** A context whose global `hand(path, value)` copies `value` to the host through a Reference
 *  applied with `copy: true` (Cinder's async and blocking calls) or a Callback (its synchronous
 *  calls and sends), and answers with the characters of the strings the host received. */
async function guestWith(isolate: ivm.Isolate): Promise<ivm.Context> {
  const context = await isolate.createContext();
  const received = (value: unknown): number => {
    let total = 0;
    const visit = (v: unknown) => {
      if (typeof v === 'string') total += v.length;
      else if (v && typeof v === 'object') for (const inner of Object.values(v)) visit(inner);
    };
    visit(value);
    return total;
  };
  await context.global.set('hostReference', new ivm.Reference((value: unknown) => received(value)));
  await context.global.set('hostCallback', new ivm.Callback((value: unknown) => received(value)));
  await context.eval(`globalThis.hand = (path, value) => path === 'callback'
    ? hostCallback(value)
    : hostReference.applySync(undefined, [value], { arguments: { copy: true } })`);
  return context;
}

/** Runs `body` in the guest (it returns a value to hand over) and reports what happened there. */
function attempt(context: ivm.Context, path: 'reference' | 'callback', body: string): Promise<string> {
  return context.eval(`(() => {
    const value = (() => { ${body} })();
    try { return 'copied ' + hand(${JSON.stringify(path)}, value); }
    catch (e) { return e.name + ': ' + e.message; }
  })()`, { timeout: 20_000 }) as Promise<string>;
}

let limited: ivm.Isolate;
let unlimited: ivm.Isolate;
let spawned: ivm.Isolate;
let limitedContext: ivm.Context;
let unlimitedContext: ivm.Context;
let spawnedContext: ivm.Context;

beforeAll(async () => {
  limited = new ivm.Isolate({ memoryLimit: 64, copyLimit: LIMIT } as ivm.IsolateOptions);
  unlimited = new ivm.Isolate({ memoryLimit: 64 });
  spawned = await (limited as Spawner).spawnIsolate({ memoryLimit: 64, copyLimit: LIMIT });
  [limitedContext, unlimitedContext, spawnedContext] = await Promise.all([guestWith(limited), guestWith(unlimited), guestWith(spawned)]);
});

afterAll(() => {
  for (const isolate of [limited, unlimited, spawned]) if (!isolate.isDisposed) isolate.dispose();
});

const refusal = `RangeError: copyLimit: the copy would be more than ${LIMIT} bytes`;

// A one-byte string of n characters is written as a tag, its length (a varint) and its characters;
// the copy adds V8's header and the array's tags and lengths: a few bytes.
describe('isolated-vm copyLimit (patch 13)', () => {
  it('copies a value that fits, and refuses one a few bytes larger', async () => {
    const fits = await attempt(limitedContext, 'reference', `return ['f'.repeat(${LIMIT - 200})];`);
    expect(fits).toBe(`copied ${LIMIT - 200}`);
    const over = await attempt(limitedContext, 'reference', `return ['o'.repeat(${LIMIT})];`);
    expect(over).toBe(refusal);
  });

  it('refuses a string written at every reference past the limit, on every copy path', async () => {
    // 600 KB referenced 4 times: 2.4 MB in the copy from 600 KB of heap.
    for (const path of ['reference', 'callback'] as const) {
      expect(await attempt(limitedContext, path, `return Array(4).fill('r'.repeat(600 * 1024));`)).toBe(refusal);
    }
  });

  it('refuses a getter that returns a small string when first read and a large one when copied', async () => {
    // isolated-vm's Callback copies with JavaScript allowed: the serializer runs the getter.
    const body = `let reads = 0; const big = 'g'.repeat(400 * 1024);
      const value = {};
      for (let i = 0; i < 8; i++) Object.defineProperty(value, 'p' + i, { enumerable: true, get() { return reads++ < 8 ? 'small' : big; } });
      for (const key of Object.keys(value)) value[key]; // what a count before the copy would see
      return value;`;
    expect(await attempt(limitedContext, 'callback', body)).toBe(refusal);
    // The same getter copies in full where no limit is set (3.2 MB reached the host).
    expect(await attempt(unlimitedContext, 'callback', body)).toBe(`copied ${8 * 400 * 1024}`);
  });

  it('refuses a getter that replaces itself with data after it was counted (JavaScript disallowed during the copy)', async () => {
    const body = `const big = 'd'.repeat(400 * 1024); const value = {};
      Object.defineProperty(value, 'first', { enumerable: true, configurable: true, get() {
        Object.defineProperty(value, 'first', { value: 'small', enumerable: true, configurable: true, writable: true });
        for (let i = 0; i < 8; i++) value['p' + i] = big;
        return 'small';
      } });
      value.first;
      return value;`;
    expect(await attempt(limitedContext, 'reference', body)).toBe(refusal);
  });

  it('marks its refusal with a non-enumerable own `copyLimit` (how the bridge tells it from a relayed one)', async () => {
    const answer = await limitedContext.eval(`(() => {
      try { hand('reference', Array(4).fill('m'.repeat(600 * 1024))); return 'copied'; }
      catch (e) { const mark = Object.getOwnPropertyDescriptor(e, 'copyLimit'); return JSON.stringify([e instanceof RangeError, mark?.value, mark?.enumerable]); }
    })()`);
    expect(answer).toBe(JSON.stringify([true, LIMIT, false]));
  });

  it('holds the limit in isolates made by spawnIsolate (patch 4) too', async () => {
    expect(await attempt(spawnedContext, 'reference', `return Array(4).fill('s'.repeat(600 * 1024));`)).toBe(refusal);
    expect(await attempt(spawnedContext, 'reference', `return Array(2).fill('s'.repeat(400 * 1024));`)).toBe(`copied ${800 * 1024}`);
  });

  it('leaves isolates without the option, and the host\'s own copies, unbounded', async () => {
    expect(await attempt(unlimitedContext, 'reference', `return Array(4).fill('u'.repeat(600 * 1024));`)).toBe(`copied ${4 * 600 * 1024}`);
    // A host value copied into the limited isolate is serialized by the host (no limit there).
    await limitedContext.global.set('fromHost', Array(4).fill('h'.repeat(600 * 1024)), { copy: true });
    expect(await limitedContext.eval('fromHost.length * fromHost[0].length')).toBe(4 * 600 * 1024);
    await limitedContext.global.delete('fromHost');
  });

  it('copies a top-level string or ArrayBuffer without the serializer: bounded by the isolate\'s memory, not the limit', async () => {
    // ExternalCopy copies these byte for byte as the isolate holds them (the count covers them exactly).
    expect(await attempt(limitedContext, 'reference', `return 't'.repeat(${2 * LIMIT});`)).toBe(`copied ${2 * LIMIT}`);
  });

  it('refuses a Proxy with V8\'s DataCloneError: Proxies are never serialized', async () => {
    for (const path of ['reference', 'callback'] as const) {
      expect(await attempt(limitedContext, path, `return [new Proxy({ a: 'x' }, {})];`)).toMatch(/^TypeError: #<Object> could not be cloned/);
    }
  });

  it('refuses a copyLimit that is not a number of bytes', () => {
    for (const copyLimit of [5, -1, Number.NaN]) {
      expect(() => new ivm.Isolate({ memoryLimit: 8, copyLimit } as ivm.IsolateOptions)).toThrow(/`copyLimit` must be 0 or a number of bytes of at least 1024/);
    }
  });
});
