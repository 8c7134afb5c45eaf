// performance and navigator inside a real isolate, as workerd exposes them: timeOrigin is 0, so
// performance.now() is the wall clock in milliseconds; navigator.userAgent is "Cloudflare-Workers".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

let guest: Guest;
beforeAll(async () => {
  guest = await createGuest();
});
afterAll(() => guest.dispose());

describe('performance', () => {
  it('has a time origin of 0, so now() reads like Date.now()', async () => {
    const [origin, now, date] = await guest.run<[number, number, number]>(`return [performance.timeOrigin, performance.now(), Date.now()]`);
    expect(origin).toBe(0);
    expect(Math.abs(now - date)).toBeLessThan(50);
    expect(Math.abs(now - Date.now())).toBeLessThan(1000);
  });

  it('advances with real time and never goes backwards between calls', async () => {
    expect(
      await guest.run(`const a = performance.now();
        await new Promise((r) => setTimeout(r, 30));
        const b = performance.now();
        let ordered = true, prev = performance.now();
        for (let i = 0; i < 1000; i++) { const t = performance.now(); if (t < prev) ordered = false; prev = t; }
        return [b - a >= 25, ordered]`),
    ).toEqual([true, true]);
  });

  it('serializes to JSON and has Performance identity', async () => {
    expect(
      await guest.run(`return [JSON.stringify(performance), performance instanceof Performance, Object.prototype.toString.call(performance),
        (() => { try { new Performance(); return 'constructed'; } catch (e) { return e.name; } })(),
        (() => { try { performance.now.call({}); return 'called'; } catch (e) { return e.name; } })()]`),
    ).toEqual(['{"timeOrigin":0}', true, '[object Performance]', 'TypeError', 'TypeError']);
  });
});

describe('navigator', () => {
  it('identifies as Cloudflare Workers with one thread', async () => {
    expect(
      await guest.run(`return [navigator.userAgent, navigator.hardwareConcurrency, navigator instanceof Navigator, Object.prototype.toString.call(navigator),
        (() => { try { new Navigator(); return 'constructed'; } catch (e) { return e.name; } })()]`),
    ).toEqual(['Cloudflare-Workers', 1, true, '[object Navigator]', 'TypeError']);
  });
});
