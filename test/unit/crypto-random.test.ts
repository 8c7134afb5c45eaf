// crypto.getRandomValues / crypto.randomUUID inside a real isolate (Web Crypto §10, with the
// checks of WPT WebCryptoAPI/getRandomValues.any.js and randomUUID.https.any.js).
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

describe('crypto.getRandomValues', () => {
  it('fills and returns the same array', async () => {
    expect(
      await run(`const a = new Uint8Array(1024);
        const r = crypto.getRandomValues(a);
        return [r === a, a.some((b) => b !== 0), new Set(a).size > 100]`),
    ).toEqual([true, true, true]);
  });

  it('gives different values on each call', async () => {
    expect(await run(`const a = crypto.getRandomValues(new Uint32Array(8)), b = crypto.getRandomValues(new Uint32Array(8)); return a.join() !== b.join()`)).toBe(true);
  });

  it('accepts every integer typed array type', async () => {
    expect(
      await run(`return [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array]
        .map((T) => { const a = new T(64); return crypto.getRandomValues(a) === a && a.some((v) => v != 0); })`),
    ).toEqual(Array(9).fill(true));
  });

  it('throws TypeMismatchError for float arrays and DataView, TypeError for non-views', async () => {
    expect(
      await run(`return [new Float32Array(4), new Float64Array(4), new DataView(new ArrayBuffer(4)), new ArrayBuffer(4), [1, 2], null]
        .map((v) => attempt(() => crypto.getRandomValues(v)))`),
    ).toEqual([
      { name: 'TypeMismatchError', code: 17, dom: true },
      { name: 'TypeMismatchError', code: 17, dom: true },
      { name: 'TypeMismatchError', code: 17, dom: true },
      { name: 'TypeError', dom: false },
      { name: 'TypeError', dom: false },
      { name: 'TypeError', dom: false },
    ]);
  });

  it('allows 65536 bytes and throws QuotaExceededError above', async () => {
    expect(
      await run(`return [attempt(() => crypto.getRandomValues(new Uint8Array(65536))), attempt(() => crypto.getRandomValues(new Uint8Array(65537))),
        attempt(() => crypto.getRandomValues(new Uint32Array(16384))), attempt(() => crypto.getRandomValues(new BigUint64Array(8193))),
        attempt(() => crypto.getRandomValues(new Uint8Array(0)))]`),
    ).toEqual([
      'no error',
      { name: 'QuotaExceededError', code: 22, dom: true },
      'no error',
      { name: 'QuotaExceededError', code: 22, dom: true },
      'no error',
    ]);
  });

  it('fills only the bytes of the view, not the rest of its buffer', async () => {
    expect(
      await run(`const buffer = new Uint8Array(64);
        crypto.getRandomValues(new Uint16Array(buffer.buffer, 16, 16));
        return [buffer.subarray(0, 16).every((b) => b === 0), buffer.subarray(48).every((b) => b === 0), buffer.subarray(16, 48).some((b) => b !== 0)]`),
    ).toEqual([true, true, true]);
  });

  it('requires an argument and a Crypto receiver', async () => {
    expect(await run(`return [attempt(() => crypto.getRandomValues()), attempt(() => crypto.getRandomValues.call({}, new Uint8Array(1)))]`)).toEqual([
      { name: 'TypeError', dom: false },
      { name: 'TypeError', dom: false },
    ]);
  });
});

describe('crypto.randomUUID', () => {
  it('returns lowercase version 4, variant 10 UUIDs', async () => {
    expect(
      await run(`const pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
        const all = Array.from({ length: 500 }, () => crypto.randomUUID());
        return [all.every((u) => pattern.test(u)), new Set(all).size]`),
    ).toEqual([true, 500]);
  });

  it('uses all the random bits it is allowed to (each hex digit varies)', async () => {
    // 122 random bits: every position except the fixed version digit should take many values.
    expect(
      await run(`const seen = Array.from({ length: 36 }, () => new Set());
        for (let i = 0; i < 400; i++) [...crypto.randomUUID()].forEach((c, j) => seen[j].add(c));
        return seen.map((s) => s.size)`),
    ).toEqual([
      16, 16, 16, 16, 16, 16, 16, 16, 1, 16, 16, 16, 16, 1, 1, 16, 16, 16, 1, 4, 16, 16, 16, 1,
      16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    ]);
  });
});

describe('Crypto', () => {
  it('has workerd/browser class identity and a subtle', async () => {
    expect(
      await run(`return [crypto instanceof Crypto, Object.prototype.toString.call(crypto), Crypto.name, attempt(() => new Crypto()),
        typeof crypto.subtle, Object.getPrototypeOf(crypto) === Crypto.prototype]`),
    ).toEqual([true, '[object Crypto]', 'Crypto', { name: 'TypeError', dom: false }, 'object', true]);
  });
});
