// The platform family's globals as worker code sees them: present, non-enumerable like other
// Web IDL globals, with their own class names and browser-style toStringTags.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

let guest: Guest;
beforeAll(async () => {
  guest = await createGuest();
});
afterAll(() => guest.dispose());

const INTERFACES = ['TextEncoder', 'TextDecoder', 'DOMException', 'Crypto', 'Event', 'EventTarget', 'CustomEvent', 'AbortController', 'AbortSignal', 'Performance', 'Navigator'];
const FUNCTIONS = ['atob', 'btoa', 'structuredClone'];
const INSTANCES = { crypto: 'Crypto', performance: 'Performance', navigator: 'Navigator' };

describe('platform globals', () => {
  it('defines every interface with its own name and a read-only toStringTag', async () => {
    expect(
      await guest.run(`return ${JSON.stringify(INTERFACES)}.map((n) => {
        const C = globalThis[n]; const tag = Object.getOwnPropertyDescriptor(C.prototype, Symbol.toStringTag);
        return [n, typeof C, C.name, tag && tag.value, tag && tag.writable, Object.getOwnPropertyDescriptor(globalThis, n).enumerable];
      })`),
    ).toEqual(INTERFACES.map((n) => [n, 'function', n, n, false, false]));
  });

  it('defines the functions and singleton objects', async () => {
    expect(
      await guest.run(`return [${JSON.stringify(FUNCTIONS)}.map((n) => [typeof globalThis[n], globalThis[n].name]),
        Object.entries(${JSON.stringify(INSTANCES)}).map(([n, c]) => Object.getPrototypeOf(globalThis[n]) === globalThis[c].prototype)]`),
    ).toEqual([FUNCTIONS.map((n) => ['function', n]), [true, true, true]]);
  });

  it('keeps sandbox internals off the public interfaces', async () => {
    expect(await guest.run(`return [typeof DOMException.isDOMException, Object.getOwnPropertyNames(AbortSignal).sort()]`)).toEqual([
      'undefined',
      ['abort', 'any', 'length', 'name', 'prototype', 'timeout'],
    ]);
  });
});
