// Headers inside a real isolate: WHATWG Fetch §5.1 plus the workerd extensions (getAll for
// Set-Cookie). Cases follow the spec's algorithms and WPT's fetch/api/headers tests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

describe('Headers', () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await createGuest();
  });
  afterAll(() => guest.dispose());

  describe('construction', () => {
    it('accepts a record, a sequence of pairs and another Headers', async () => {
      expect(
        await guest.run(`
          const fromRecord = new Headers({ 'Content-Type': 'text/plain', 'X-A': '1' });
          const fromPairs = new Headers([['X-A', '1'], ['x-a', '2']]);
          const fromHeaders = new Headers(fromPairs);
          fromPairs.set('x-a', 'changed');
          return [[...fromRecord], [...fromPairs], [...fromHeaders], [...new Headers()], [...new Headers(undefined)]];
        `),
      ).toEqual([
        [['content-type', 'text/plain'], ['x-a', '1']],
        [['x-a', 'changed']],
        [['x-a', '1, 2']],
        [],
        [],
      ]);
    });

    it('accepts any iterable of iterables as a sequence', async () => {
      expect(await guest.run(`return [...new Headers(new Map([['a', '1'], ['b', '2']]))]`)).toEqual([['a', '1'], ['b', '2']]);
    });

    it('rejects pairs that do not have exactly two items', async () => {
      expect(
        await guest.run(`
          const out = [];
          for (const init of [[['a']], [['a', 'b', 'c']], [[]], ['ab']]) {
            try { new Headers(init); out.push('ok'); } catch (e) { out.push(e.constructor.name); }
          }
          return out;
        `),
      ).toEqual(['TypeError', 'TypeError', 'TypeError', 'TypeError']);
    });

    it('rejects null and primitives (WebIDL: neither a record nor a sequence)', async () => {
      expect(
        await guest.run(`
          return [null, 1, 'a=b', true].map((init) => { try { new Headers(init); return 'ok'; } catch (e) { return e.constructor.name; } });
        `),
      ).toEqual(['TypeError', 'TypeError', 'TypeError', 'TypeError']);
    });

    it('reads only own enumerable string keys of a record, and refuses symbol keys', async () => {
      expect(
        await guest.run(`
          const proto = { inherited: 'x' };
          const init = Object.create(proto);
          init.own = '1';
          Object.defineProperty(init, 'hidden', { value: '2', enumerable: false });
          const symbolKey = { [Symbol('s')]: 'v' };
          let symbolError = null;
          try { new Headers(symbolKey); } catch (e) { symbolError = e.constructor.name; }
          return [[...new Headers(init)], symbolError];
        `),
      ).toEqual([[['own', '1']], 'TypeError']);
    });
  });

  describe('name and value validation', () => {
    it('throws TypeError for names that are not HTTP tokens', async () => {
      expect(
        await guest.run(`
          const bad = ['', 'a b', 'a:b', 'a\\nb', 'ä', '(a)', 'a/b', '"a"', '@', '\\u{1F600}'];
          return bad.map((name) => {
            const results = [];
            for (const op of [(h) => h.append(name, 'v'), (h) => h.set(name, 'v'), (h) => h.get(name), (h) => h.has(name), (h) => h.delete(name)]) {
              try { op(new Headers()); results.push('ok'); } catch (e) { results.push(e.constructor.name); }
            }
            return results.join();
          });
        `),
      ).toEqual(Array(10).fill('TypeError,TypeError,TypeError,TypeError,TypeError'));
    });

    it('accepts every token character in names', async () => {
      expect(await guest.run(`const h = new Headers(); h.set("!#$%&'*+-.^_\`|~09azAZ", 'v'); return [...h.keys()];`)).toEqual([
        "!#$%&'*+-.^_`|~09azaz",
      ]);
    });

    it('strips leading and trailing HTTP whitespace from values, not inner whitespace', async () => {
      expect(
        await guest.run(`
          const h = new Headers();
          h.append('a', ' \\t\\r\\n v  w \\n\\t ');
          h.set('b', '\\t');
          return [h.get('a'), h.get('b')];
        `),
      ).toEqual(['v  w', '']);
    });

    it('throws TypeError for values holding NUL, CR or LF after trimming', async () => {
      expect(
        await guest.run(`
          return ['a\\0b', 'a\\rb', 'a\\nb', 'a\\r\\n b'].map((v) => { try { new Headers({ x: v }); return 'ok'; } catch (e) { return e.constructor.name; } });
        `),
      ).toEqual(['TypeError', 'TypeError', 'TypeError', 'TypeError']);
    });

    it('takes values as ByteStrings: Latin-1 passes, anything above U+00FF throws', async () => {
      expect(
        await guest.run(`
          const h = new Headers({ a: 'caf\\u00e9 \\u00ff' });
          let error = null;
          try { h.set('b', '\\u20ac'); } catch (e) { error = e.constructor.name; }
          return [h.get('a'), error];
        `),
      ).toEqual(['café ÿ', 'TypeError']);
    });

    it('converts non-string values with ToString', async () => {
      expect(await guest.run(`const h = new Headers({ n: 12, u: undefined, o: { toString() { return 'obj'; } } }); return [...h];`)).toEqual([
        ['n', '12'],
        ['o', 'obj'],
        ['u', 'undefined'],
      ]);
    });
  });

  describe('accessors', () => {
    it('is case-insensitive and combines repeated values with ", "', async () => {
      expect(
        await guest.run(`
          const h = new Headers();
          h.append('Accept', 'a');
          h.append('ACCEPT', 'b');
          return [h.get('accept'), h.has('aCcEpT'), h.get('missing'), h.has('missing')];
        `),
      ).toEqual(['a, b', true, null, false]);
    });

    it('set() replaces every value of that name; delete() removes them all', async () => {
      expect(
        await guest.run(`
          const h = new Headers([['a', '1'], ['b', '2'], ['A', '3']]);
          h.set('a', 'x');
          const afterSet = [...h];
          h.delete('B');
          return [afterSet, [...h], h.get('a')];
        `),
      ).toEqual([[['a', 'x'], ['b', '2']], [['a', 'x']], 'x']);
    });

    it('keeps Set-Cookie values apart: getSetCookie(), iteration, and workerd getAll()', async () => {
      expect(
        await guest.run(`
          const h = new Headers([['Set-Cookie', 'a=1'], ['x', 'y'], ['set-cookie', 'b=2; Path=/']]);
          let getAllOther = null;
          try { h.getAll('x'); } catch (e) { getAllOther = e.constructor.name; }
          return [h.getSetCookie(), h.get('set-cookie'), [...h], h.getAll('Set-Cookie'), getAllOther, new Headers().getSetCookie()];
        `),
      ).toEqual([
        ['a=1', 'b=2; Path=/'],
        'a=1, b=2; Path=/',
        [['set-cookie', 'a=1'], ['set-cookie', 'b=2; Path=/'], ['x', 'y']],
        ['a=1', 'b=2; Path=/'],
        'TypeError',
        [],
      ]);
    });
  });

  describe('iteration ("sort and combine")', () => {
    it('yields lowercase names in sorted order with combined values', async () => {
      expect(
        await guest.run(`
          const h = new Headers([['B', '1'], ['a', '2'], ['C', '3'], ['b', '4']]);
          return [[...h], [...h.keys()], [...h.values()], [...h.entries()]];
        `),
      ).toEqual([
        [['a', '2'], ['b', '1, 4'], ['c', '3']],
        ['a', 'b', 'c'],
        ['2', '1, 4', '3'],
        [['a', '2'], ['b', '1, 4'], ['c', '3']],
      ]);
    });

    it('sees changes made while iterating (WebIDL iterators re-read their target)', async () => {
      expect(
        await guest.run(`
          const h = new Headers({ a: '1', c: '3' });
          const seen = [];
          for (const [name] of h) {
            seen.push(name);
            if (name === 'a') h.set('b', '2');
          }
          return seen;
        `),
      ).toEqual(['a', 'b', 'c']);
    });

    it('forEach passes (value, name, headers) and honours thisArg', async () => {
      expect(
        await guest.run(`
          const h = new Headers({ b: '2', a: '1' });
          const calls = [];
          const self = { tag: 'this' };
          h.forEach(function (value, name, target) { calls.push([value, name, target === h, this.tag]); }, self);
          let error = null;
          try { h.forEach('nope'); } catch (e) { error = e.constructor.name; }
          return [calls, error];
        `),
      ).toEqual([[['1', 'a', true, 'this'], ['2', 'b', true, 'this']], 'TypeError']);
    });

    it('has browser-shaped iterators and toStringTags', async () => {
      expect(
        await guest.run(`
          const h = new Headers();
          const it = h.entries();
          const IteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
          return [
            Object.prototype.toString.call(h),
            String(h),
            Object.prototype.toString.call(it),
            Object.getPrototypeOf(Object.getPrototypeOf(it)) === IteratorPrototype,
            it[Symbol.iterator]() === it,
            Headers.prototype[Symbol.iterator] === Headers.prototype.entries,
            Object.keys(Headers.prototype).includes('getSetCookie'),
            Headers.name,
          ];
        `),
      ).toEqual(['[object Headers]', '[object Headers]', '[object Headers Iterator]', true, true, true, true, 'Headers']);
    });
  });

  describe('immutable guard', () => {
    it('makes Response.redirect() and Response.error() headers read-only', async () => {
      expect(
        await guest.run(`
          const results = [];
          for (const headers of [Response.redirect('https://example.com/', 301).headers, Response.error().headers]) {
            for (const op of [(h) => h.set('x', '1'), (h) => h.append('x', '1'), (h) => h.delete('location')]) {
              try { op(headers); results.push('ok'); } catch (e) { results.push(e.message); }
            }
          }
          return results;
        `),
      ).toEqual(Array(6).fill("Can't modify immutable headers."));
    });

    it('still validates the name before the guard, and reading stays allowed', async () => {
      expect(
        await guest.run(`
          const h = Response.redirect('https://example.com/a').headers;
          let error = null;
          try { h.set('bad name', 'v'); } catch (e) { error = e.message; }
          return [error.includes('Invalid header name'), h.get('location'), [...h]];
        `),
      ).toEqual([true, 'https://example.com/a', [['location', 'https://example.com/a']]]);
    });

    it('a Headers copied from immutable headers is mutable', async () => {
      expect(
        await guest.run(`
          const copy = new Headers(Response.redirect('https://example.com/').headers);
          copy.set('x', '1');
          return [...copy];
        `),
      ).toEqual([['location', 'https://example.com/'], ['x', '1']]);
    });
  });
});
