// structuredClone inside a real isolate: HTML's StructuredSerialize/Deserialize rules (what is
// copied, what keeps its identity, what throws DataCloneError) and the transfer option.
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
const dataCloneError = { name: 'DataCloneError', code: 25, dom: true };

describe('structuredClone: values', () => {
  it('returns primitives as they are', async () => {
    expect(
      await run(`const values = [undefined, null, true, 0, -0, NaN, Infinity, 12n, '', 'text \\u{1F600}'];
        return values.map((v) => Object.is(structuredClone(v), v))`),
    ).toEqual(Array(10).fill(true));
  });

  it('copies boxed primitives as new wrapper objects', async () => {
    expect(
      await run(`const inputs = [new Number(-0), new String('ab'), new Boolean(false), Object(5n)];
        return inputs.map((v) => { const c = structuredClone(v); return [typeof c, c !== v, Object.prototype.toString.call(c), String(c.valueOf())]; })`),
    ).toEqual([
      ['object', true, '[object Number]', '0'],
      ['object', true, '[object String]', 'ab'],
      ['object', true, '[object Boolean]', 'false'],
      ['object', true, '[object BigInt]', '5'],
    ]);
  });

  it('copies Date and RegExp (lastIndex is not carried over)', async () => {
    expect(
      await run(`const d = new Date(1234567890123); const cd = structuredClone(d);
        const r = /a+b/giu; r.lastIndex = 3; const cr = structuredClone(r);
        return [cd instanceof Date, cd !== d, cd.getTime(), cr instanceof RegExp, cr !== r, cr.source, cr.flags, cr.lastIndex,
          Number.isNaN(structuredClone(new Date(NaN)).getTime())]`),
    ).toEqual([true, true, 1234567890123, true, true, 'a+b', 'giu', 0, true]);
  });

  it('copies plain objects and arrays deeply, keeping holes, length and extra keys', async () => {
    expect(
      await run(`const a = [1, , 3]; a.length = 5; a.extra = 'x';
        const o = { n: 1, nested: { list: a, s: 'str' } };
        const c = structuredClone(o);
        return [c !== o, c.nested !== o.nested, c.nested.list !== a, Array.isArray(c.nested.list), c.nested.list.length,
          1 in c.nested.list, c.nested.list[2], c.nested.list.extra, JSON.stringify(c)]`),
    ).toEqual([true, true, true, true, 5, false, 3, 'x', '{"n":1,"nested":{"list":[1,null,3,null,null],"s":"str"}}']);
  });

  it('drops prototypes, symbol keys and non-enumerable keys, and reads getters once', async () => {
    expect(
      await run(`class Point { constructor() { this.x = 1; } get y() { return 2; } }
        let reads = 0;
        const o = new Point();
        Object.defineProperty(o, 'hidden', { value: 1, enumerable: false });
        Object.defineProperty(o, 'computed', { get() { reads++; return 'v'; }, enumerable: true });
        o[Symbol('s')] = 1;
        const c = structuredClone(o);
        return [Object.getPrototypeOf(c) === Object.prototype, Object.keys(c), 'hidden' in c, Object.getOwnPropertySymbols(c).length,
          Object.getOwnPropertyDescriptor(c, 'computed').value, reads, 'y' in c]`),
    ).toEqual([true, ['x', 'computed'], false, 0, 'v', 1, false]);
  });

  it('keeps an own "__proto__" key as data instead of setting the prototype', async () => {
    expect(
      await run(`const o = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
        const c = structuredClone(o);
        return [Object.getPrototypeOf(c) === Object.prototype, Object.keys(c), c.polluted, Object.getOwnPropertyDescriptor(c, '__proto__').value.polluted]`),
    ).toEqual([true, ['__proto__', 'a'], undefined, true]);
  });

  it('copies Map and Set, including object keys', async () => {
    expect(
      await run(`const key = { k: 1 };
        const m = new Map([[key, 'v'], ['s', { deep: [1] }]]);
        const s = new Set([key, 2]);
        const c = structuredClone({ m, s });
        const [ck] = c.m.keys();
        return [c.m instanceof Map, c.m.size, ck !== key, ck.k, c.m.get('s').deep[0], c.s instanceof Set, c.s.has(2), [...c.s][0] === ck]`),
    ).toEqual([true, 2, true, 1, 1, true, true, true]);
  });

  it('preserves shared references and cycles', async () => {
    expect(
      await run(`const shared = { v: 1 };
        const o = { a: shared, b: shared, list: [shared] };
        o.self = o; o.list.push(o);
        const m = new Map(); m.set(m, m);
        const list = [1]; list.push(list);
        const c = structuredClone(o); const cm = structuredClone(m); const cl = structuredClone({ x: list, y: list });
        return [c.a === c.b, c.a === c.list[0], c.self === c, c.list[1] === c, c !== o, cm.get(cm) === cm, cm !== m,
          cl.x === cl.y, cl.x[1] === cl.x, cl.x !== list]`),
    ).toEqual([true, true, true, true, true, true, true, true, true, true]);
  });

  it('copies ArrayBuffers and views, keeping views of one buffer on one copied buffer', async () => {
    expect(
      await run(`const buffer = new ArrayBuffer(8);
        const bytes = new Uint8Array(buffer); bytes.set([1, 2, 3, 4, 5, 6, 7, 8]);
        const words = new Uint16Array(buffer, 2, 2);
        const view = new DataView(buffer, 4);
        const c = structuredClone({ buffer, bytes, words, view, big: new BigInt64Array([-1n]), f: new Float64Array([0.5]) });
        c.bytes[0] = 99;
        return [c.buffer !== buffer, c.bytes.buffer === c.buffer, c.words.buffer === c.buffer, c.view.buffer === c.buffer, new Uint8Array(c.buffer)[0],
          bytes[0], c.words.byteOffset, c.words.length, Array.from(c.words), c.view.byteOffset, c.view.getUint8(0),
          c.big[0] === -1n, c.f[0], Object.prototype.toString.call(c.words)]`),
    ).toEqual([true, true, true, true, 99, 1, 2, 2, [0x0403, 0x0605], 4, 5, true, 0.5, '[object Uint16Array]']);
  });

  it('copies errors: native types keep their prototype, others become Error; message, stack and cause survive', async () => {
    expect(
      await run(`const t = new TypeError('bad', { cause: { why: 1 } });
        const custom = new Error('c'); custom.name = 'CustomError';
        class MyError extends RangeError {}
        const ct = structuredClone(t), cc = structuredClone(custom), cm = structuredClone(new MyError('m'));
        const noMessage = structuredClone(new Error());
        return [ct instanceof TypeError, ct.name, ct.message, ct.stack === t.stack, ct.cause.why, ct.cause !== t.cause,
          Object.getOwnPropertyDescriptor(ct, 'message').enumerable,
          Object.getPrototypeOf(cc) === Error.prototype, cc.name, cm instanceof RangeError, cm instanceof MyError,
          Object.prototype.hasOwnProperty.call(noMessage, 'message')]`),
    ).toEqual([true, 'TypeError', 'bad', true, 1, true, false, true, 'Error', true, false, false]);
  });

  it('copies DOMException', async () => {
    expect(
      await run(`const e = new DOMException('gone', 'NotFoundError');
        const c = structuredClone(e);
        return [c instanceof DOMException, c !== e, c.name, c.message, c.code, c.stack === e.stack]`),
    ).toEqual([true, true, 'NotFoundError', 'gone', 8, true]);
  });
});

describe('structuredClone: DataCloneError', () => {
  it('throws for functions and symbols, at any depth', async () => {
    expect(
      await run(`return [() => {}, class {}, Symbol('s'), { a: { b: [1, () => {}] } }, new Map([[1, Symbol()]]), Object(Symbol('w'))]
        .map((v) => attempt(() => structuredClone(v)))`),
    ).toEqual(Array(6).fill(dataCloneError));
  });

  it('throws for promises, weak collections and iterators', async () => {
    expect(
      await run(`return [Promise.resolve(1), new WeakMap(), new WeakSet(), new WeakRef({}), new Map().entries(), new Set().values()]
        .map((v) => attempt(() => structuredClone(v)))`),
    ).toEqual(Array(6).fill(dataCloneError));
  });

  it('throws for platform objects that are not serializable', async () => {
    expect(
      await run(`return [new EventTarget(), new AbortController(), new AbortController().signal, new Event('x'), new TextEncoder(), crypto]
        .map((v) => attempt(() => structuredClone(v)))`),
    ).toEqual(Array(6).fill(dataCloneError));
  });

  it('is not fooled by Symbol.toStringTag', async () => {
    expect(
      await run(`const fakeDate = { [Symbol.toStringTag]: 'Date', x: 1 };
        const fakeMap = { [Symbol.toStringTag]: 'Map', y: 2 };
        const c1 = structuredClone(fakeDate), c2 = structuredClone(fakeMap);
        return [c1 instanceof Date, c1.x, c2 instanceof Map, c2.y]`),
    ).toEqual([false, 1, false, 2]);
  });
});

describe('structuredClone: arguments and transfer', () => {
  it('requires a value argument and a dictionary for options', async () => {
    expect(await run(`return [attempt(() => structuredClone()), attempt(() => structuredClone(1, 5)), structuredClone(1, null), structuredClone(2, {})]`)).toEqual([
      { name: 'TypeError', dom: false },
      { name: 'TypeError', dom: false },
      1,
      2,
    ]);
  });

  it('validates the transfer list', async () => {
    expect(
      await run(`const buffer = new ArrayBuffer(4);
        return [attempt(() => structuredClone(1, { transfer: 5 })), attempt(() => structuredClone(1, { transfer: [1] })),
          attempt(() => structuredClone(1, { transfer: [new Uint8Array(2)] })), attempt(() => structuredClone(1, { transfer: [{}] })),
          attempt(() => structuredClone(1, { transfer: [buffer, buffer] }))]`),
    ).toEqual([{ name: 'TypeError', dom: false }, { name: 'TypeError', dom: false }, dataCloneError, dataCloneError, dataCloneError]);
  });

  it('moves transferred buffers into the clone, detaching the originals where V8 can', async () => {
    const result = await run<[boolean, number[], boolean, number, number]>(`const buffer = new Uint8Array([1, 2, 3]).buffer;
      const view = new Uint8Array(buffer);
      const c = structuredClone({ view }, { transfer: [buffer] });
      return [c.view.buffer !== buffer, Array.from(c.view), typeof ArrayBuffer.prototype.transfer === 'function', buffer.byteLength, view.length]`);
    const [distinct, contents, canDetach, originalLength, viewLength] = result;
    expect([distinct, contents]).toEqual([true, [1, 2, 3]]);
    // V8 11.3 (Node 20) cannot detach from JavaScript; with ArrayBuffer.prototype.transfer it must.
    expect([originalLength, viewLength]).toEqual(canDetach ? [0, 0] : [3, 3]);
  });

  it('does not detach anything when cloning fails', async () => {
    expect(
      await run(`const buffer = new ArrayBuffer(4);
        const error = attempt(() => structuredClone({ buffer, f() {} }, { transfer: [buffer] }));
        return [error, buffer.byteLength]`),
    ).toEqual([dataCloneError, 4]);
  });
});
