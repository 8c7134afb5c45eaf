// URL and URLSearchParams inside a real isolate (WHATWG URL Standard). Parsing is checked two
// ways: literal expectations from the spec's examples and WPT's urltestdata, and a wider table
// compared with Node's own URL (Ada, WHATWG-conformant) as an oracle.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

const COMPONENTS = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'] as const;
type Parts = Record<(typeof COMPONENTS)[number], string> | 'failure';

/** Inputs whose parse results Node's URL (the oracle) must agree with. */
const ORACLE_CASES: [input: string, base?: string][] = [
  ['https://user:pass@example.com:8080/p/a/t/h?query=string#hash'],
  ['HTTP://EXAMPLE.COM:80/'],
  ['https://example.com:443/'],
  ['http://example.com:65535/'],
  ['http://example.com:65536/'],
  ['http://example.com/a/./b/../../c/%2e%2E/d'],
  ['http://example.com/%7e?%7e#%7e'],
  ['http://example.com/ foo?a b#c d'],
  ['http://example.com/\u00e9?\u00e9#\u00e9'],
  ['http://example.com/?q=\'"<>`'],
  ['foo://example.com/?q=\'"<>`'],
  ['http://[::1]:8080/'],
  ['http://[1:0:0:0:0:0:0:1]/'],
  ['http://[::ffff:192.168.0.1]/'],
  ['http://[::1/'],
  ['http://0x7f.1/'],
  ['http://192.168.0.257/'],
  ['http://4294967295/'],
  ['http://1.2.3.4.5/'],
  ['http://example.com./'],
  ['http://a b/'],
  ['http://a%20b/'],
  ['http://%41.com/'],
  ['http://ex%00ample.com/'],
  ['http://ÉXAMPLE.com/'],
  ['http://日本.jp/'],
  ['http://xn--nxasmq6b.com/'],
  ['http://\u2665.com/'],
  ['http://ｇｏｏ.com/'],
  ['file:///C:/x/../y'],
  ['file://host/share/file'],
  ['file:/etc/passwd'],
  ['data:text/plain,hello world'],
  ['javascript:alert(1)'],
  ['mailto:someone@example.com'],
  ['blob:https://example.com/uuid'],
  ['sc://ñ.test/'],
  ['sc:\\../'],
  ['non-special://host/a/../b'],
  ['  https://example.com/trimmed  '],
  ['ht\ttp://exa\nmple.com/'],
  ['https:example.com'],
  ['https://'],
  ['https://example.com:bad/'],
  ['//example.com/path', 'https://base.test/'],
  ['../up', 'https://base.test/a/b/c'],
  ['?q', 'https://base.test/a?old#frag'],
  ['#f', 'https://base.test/a?q'],
  ['', 'https://base.test/a?q#f'],
  ['\\\\x\\y', 'http://base.test/'],
  ['path', 'data:text/plain,opaque'],
  ['relative'],
];

/** Inputs at the edges of the fast path for canonical URLs (url-fast-path.ts): each either goes
 *  through it or must be sent to the full parser, and both must agree with the oracle. */
const FAST_PATH_CASES: string[] = [
  'http://a/',
  'http://A.EXAMPLE.com/Path',
  'http://example.com:80/',
  'http://example.com:0080/x',
  'https://example.com:443/',
  'https://example.com:8443',
  'ws://example.com:80/',
  'wss://example.com:443/chat',
  'http://example.com:/',
  'http://example.com',
  'http://example.com?q',
  'http://example.com#f',
  'http://example.com/?',
  'http://example.com/#',
  'http://example.com//a//b/',
  'http://example.com/a/./b',
  'http://example.com/a/%2E%2e/b',
  'http://example.com/a/.%2e',
  'http://example.com/a/..',
  'http://example.com/%zz/%41',
  'http://example.com/{}',
  'http://example.com/a`b',
  "http://example.com/?q='",
  'http://example.com/?a=b&c=d/e?f',
  'http://example.com/#a`b',
  'http://example.com/#a#b?c',
  'http://example.de/',
  'http://example.0x1f/',
  'http://example.0X/',
  'http://example.123/',
  'http://example.08/',
  'http://a.b.c.d.e.f/',
  'http://under_score.example/',
  'http://-dash-.example/',
  'http://a..b/',
  'http://example.com./',
  'http://./',
  'http://xn--nxasmq6b.com/',
  'http://Xn--ls8h.la/',
  'http://example.com:65535/',
  'http://example.com:65536/',
  'http://example.com:99999999999/',
  'https://example.com/path with space',
  'https://example.com/\u00e9',
  'http://user@example.com/',
  'http://example.com@evil.com/',
  'HTTP://example.com/',
  'http:example.com/',
  'http:/example.com/',
  'http:///example.com/',
  'http://example.com\\path',
  'http://[::1]/',
  'http://1.2.3.4/',
  'http://1.2.3.4.com/',
  'foo://example.com/',
];

describe('URL', () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await createGuest();
  });
  afterAll(() => guest.dispose());

  const parse = (input: string, base?: string): Promise<Parts> =>
    guest.run<Parts>(`
      let u;
      try { u = new URL(${JSON.stringify(input)}${base === undefined ? '' : `, ${JSON.stringify(base)}`}); } catch (e) { return e instanceof TypeError ? 'failure' : String(e); }
      return Object.fromEntries(${JSON.stringify(COMPONENTS)}.map((k) => [k, u[k]]));
    `);

  describe('parsing', () => {
    it.each(ORACLE_CASES)('parses %j like the reference implementation', async (input, base) => {
      let expected: Parts;
      try {
        const u = new globalThis.URL(input, base);
        expected = Object.fromEntries(COMPONENTS.map((k) => [k, u[k]])) as Parts;
      } catch {
        expected = 'failure';
      }
      expect(await parse(input, base)).toEqual(expected);
    });

    it.each(FAST_PATH_CASES)('parses %j like the reference implementation (fast-path edges)', async (input) => {
      let expected: Parts;
      try {
        const u = new globalThis.URL(input);
        expected = Object.fromEntries(COMPONENTS.map((k) => [k, u[k]])) as Parts;
      } catch {
        expected = 'failure';
      }
      expect(await parse(input)).toEqual(expected);
    });

    it('keeps fast-parsed URLs fully mutable (setters work on the record it builds)', async () => {
      expect(
        await guest.run(`
          const u = new URL('https://example.com/a/b?x=1#f');
          u.pathname = '../c';
          u.searchParams.append('y', '2');
          u.port = '8443';
          u.hash = '';
          return u.href;
        `),
      ).toBe('https://example.com:8443/c?x=1&y=2');
    });

    it('matches the URL Standard examples literally', async () => {
      const cases: [string, string | undefined, string][] = [
        ['https:example.org', undefined, 'https://example.org/'],
        ['https://////example.com///', undefined, 'https://example.com///'],
        ['https://example.com/././foo', undefined, 'https://example.com/foo'],
        ['hello:world', 'https://example.com/', 'hello:world'],
        ['https:example.org', 'https://example.com/', 'https://example.com/example.org'],
        ['\\example\\..\\demo/.\\', 'https://example.com/', 'https://example.com/demo/'],
        ['example', 'https://example.com/demo', 'https://example.com/example'],
        ['file:///C|/demo', undefined, 'file:///C:/demo'],
        ['..', 'file:///C:/demo', 'file:///C:/'],
        ['file://loc%61lhost/', undefined, 'file:///'],
        ['https://user:password@example.org/', undefined, 'https://user:password@example.org/'],
        ['https://example.org/foo bar', undefined, 'https://example.org/foo%20bar'],
        ['https://EXAMPLE.com/../x', undefined, 'https://example.com/x'],
        ['https://ex ample.org/', undefined, 'failure'],
        ['example', undefined, 'failure'],
        ['https://example.com:demo', undefined, 'failure'],
        ['http://[www.example.com]/', undefined, 'failure'],
        ['https://example.org//', undefined, 'https://example.org//'],
        ['https://example.com/[]?[]#[]', undefined, 'https://example.com/[]?[]#[]'],
        ['https://example/%?%#%', undefined, 'https://example/%?%#%'],
        ['https://example/%25?%25#%25', undefined, 'https://example/%25?%25#%25'],
      ];
      const results = await Promise.all(cases.map(async ([input, base]) => {
        const parts = await parse(input, base);
        return parts === 'failure' ? 'failure' : parts.href;
      }));
      expect(results).toEqual(cases.map((c) => c[2]));
    });

    it('maps internationalized hosts through UTS #46 and Punycode', async () => {
      expect(
        await guest.run(`
          return ['ÉXAMPLE.com', 'faß.de', 'ΣΑΣ.gr', 'Ⅷ.com', 'ℌ.com', 'a\\u00ADb.com', 'a.b\\u3002c', 'a\\uFF0Eb', '\\u2665.com', 'xn--ls8h.la', 'Xn--LS8H.la', '%E2%98%83.com']
            .map((host) => new URL('http://' + host + '/').host);
        `),
      ).toEqual(['xn--xample-9ua.com', 'xn--fa-hia.de', 'xn--mxa9ab.gr', 'viii.com', 'h.com', 'ab.com', 'a.b.c', 'a.b', 'xn--g6h.com', 'xn--ls8h.la', 'xn--ls8h.la', 'xn--n3h.com']);
    });

    it('rejects hosts UTS #46 rejects: invalid Punycode, ASCII-only xn-- labels, U+FFFD, controls', async () => {
      expect(
        await guest.run(`
          return ['xn--a.com', 'xn--.com', 'xn--zz.com', 'xn--abc-.com', '\\uFFFD.com', '%EF%BF%BD.com', 'a\\u0080b.com', '\\u0301a.com']
            .map((host) => URL.canParse('http://' + host + '/'));
        `),
      ).toEqual([false, false, false, false, false, false, false, false]);
    });

    it('throws a TypeError with workerd\'s message; parse() and canParse() do not throw', async () => {
      expect(
        await guest.run(`
          let message = null;
          try { new URL('nope'); } catch (e) { message = e.constructor.name + ': ' + e.message; }
          let badBase = null;
          try { new URL('/a', 'also nope'); } catch (e) { badBase = e.constructor.name; }
          let noArgs = null;
          try { new URL(); } catch (e) { noArgs = e.constructor.name; }
          return [message, badBase, noArgs, URL.parse('nope'), URL.parse('/p', 'https://h/q').href, URL.canParse('a', 'https://b/'), URL.canParse('a'), URL.canParse('https://x/', 'bad base')];
        `),
      ).toEqual(['TypeError: Invalid URL string.', 'TypeError', 'TypeError', null, 'https://h/p', true, false, false]);
    });
  });

  describe('setters', () => {
    it('update each component with the state overrides', async () => {
      expect(
        await guest.run(`
          const u = new URL('https://user:pw@example.com:8080/p?q=1#h');
          u.protocol = 'http';
          const a = u.href;
          u.username = 'us er'; u.password = 'p@ss';
          const b = u.href;
          u.host = 'EXAMPLE.org:81'; u.port = '80';
          const c = u.href;
          u.hostname = 'other.test'; u.pathname = 'a b/../c'; u.search = 'x=1 2'; u.hash = 'frag ment';
          const d = u.href;
          u.port = '99999'; u.protocol = 'nope:/'; u.search = ''; u.hash = '';
          const e = u.href;
          u.href = 'https://reset.test/';
          return [a, b, c, d, e, u.href];
        `),
      ).toEqual([
        'http://user:pw@example.com:8080/p?q=1#h',
        'http://us%20er:p%40ss@example.com:8080/p?q=1#h',
        'http://us%20er:p%40ss@example.org/p?q=1#h',
        'http://us%20er:p%40ss@other.test/c?x=1%202#frag%20ment',
        'http://us%20er:p%40ss@other.test/c',
        'https://reset.test/',
      ]);
    });

    it('refuses to switch between special and non-special schemes, and href= throws on failure', async () => {
      expect(
        await guest.run(`
          const u = new URL('https://a.test/');
          u.protocol = 'foo';
          const f = new URL('foo://a.test/');
          f.protocol = 'https';
          let error = null;
          try { u.href = 'not a url'; } catch (e) { error = e.constructor.name; }
          return [u.protocol, f.protocol, error, u.href];
        `),
      ).toEqual(['https:', 'foo:', 'TypeError', 'https://a.test/']);
    });

    // The parser percent-encodes a space that ends an opaque path before "?" or "#" (the URL
    // Standard's 2024 replacement for "strip trailing spaces"), so removing them later is safe.
    it('keeps an opaque path intact when its query and fragment are removed', async () => {
      expect(
        await guest.run(`
          const a = new URL('data:space    ?query');
          a.search = '';
          const b = new URL('sc:a ?x#y');
          b.hash = '';
          const afterHash = b.href;
          b.searchParams.delete('x');
          return [a.href, afterHash, b.href, b.pathname];
        `),
      ).toEqual(['data:space   %20', 'sc:a%20?x', 'sc:a%20', 'a%20']);
    });
  });

  describe('searchParams', () => {
    it('is live in both directions and is always the same object', async () => {
      expect(
        await guest.run(`
          const u = new URL('https://a/?b=c&d=e');
          const p = u.searchParams;
          p.append('x', 'y z');
          const afterAppend = u.href;
          u.search = '?q=1';
          const afterSearch = [p.get('q'), p.size, p.has('b')];
          u.href = 'https://other/?k=v';
          const afterHref = p.get('k');
          p.delete('k');
          return [afterAppend, afterSearch, afterHref, u.href, u.search, u.searchParams === p];
        `),
      ).toEqual(['https://a/?b=c&d=e&x=y+z', ['1', 1, false], 'v', 'https://other/', '', true]);
    });

    it('re-serializes the query with form encoding when changed', async () => {
      expect(
        await guest.run(`
          const u = new URL('https://a/?a=b%20c&d=%7E+x');
          const before = u.href;
          u.searchParams.sort();
          return [before, u.href];
        `),
      ).toEqual(['https://a/?a=b%20c&d=%7E+x', 'https://a/?a=b+c&d=%7E+x']);
    });
  });

  describe('serialization and shape', () => {
    it('toString(), toJSON() and JSON.stringify give href', async () => {
      expect(await guest.run(`const u = new URL('https://a/b?c'); return [String(u), u.toJSON(), JSON.stringify({ u })];`)).toEqual([
        'https://a/b?c',
        'https://a/b?c',
        '{"u":"https://a/b?c"}',
      ]);
    });

    it('has enumerable WebIDL attributes, the URL toStringTag and its own name', async () => {
      expect(
        await guest.run(`
          return [Object.keys(URL.prototype).sort(), Object.prototype.toString.call(new URL('https://a/')), URL.name, Object.keys(URL).sort()];
        `),
      ).toEqual([
        ['hash', 'host', 'hostname', 'href', 'origin', 'password', 'pathname', 'port', 'protocol', 'search', 'searchParams', 'toJSON', 'toString', 'username'],
        '[object URL]',
        'URL',
        ['canParse', 'parse'],
      ]);
    });
  });
});

describe('URLSearchParams', () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await createGuest();
  });
  afterAll(() => guest.dispose());

  it('parses strings (leading "?" dropped, "+" as space, percent-decoding, lone "=")', async () => {
    expect(
      await guest.run(`
        const p = new URLSearchParams('?a=1&b=%20+&c&=d&e=%zz&f=%C3%A9&&g=h=i');
        return [...p];
      `),
    ).toEqual([['a', '1'], ['b', '  '], ['c', ''], ['', 'd'], ['e', '%zz'], ['f', 'é'], ['g', 'h=i']]);
  });

  it('accepts records, sequences, other params, and converts null to the string "null"', async () => {
    expect(
      await guest.run(`
        const fromPairs = new URLSearchParams([['a', '1'], ['a', '2']]);
        return [
          new URLSearchParams({ a: '1', b: 'x y' }).toString(),
          fromPairs.getAll('a'),
          new URLSearchParams(fromPairs).toString(),
          new URLSearchParams(new Map([['m', 'n']])).toString(),
          new URLSearchParams(null).toString(),
          new URLSearchParams(undefined).toString(),
          new URLSearchParams('a=\\uD800').toString(),
        ];
      `),
    ).toEqual(['a=1&b=x+y', ['1', '2'], 'a=1&a=2', 'm=n', 'null=', '', 'a=%EF%BF%BD']);
  });

  it('rejects sequences whose items are not pairs', async () => {
    expect(
      await guest.run(`
        return [[['a']], [['a', 'b', 'c']], [1]].map((init) => { try { new URLSearchParams(init); return 'ok'; } catch (e) { return e.constructor.name; } });
      `),
    ).toEqual(['TypeError', 'TypeError', 'TypeError']);
  });

  it('implements get/getAll/has/set/delete, including the value argument of has/delete', async () => {
    expect(
      await guest.run(`
        const p = new URLSearchParams('a=1&b=2&a=3&c=4');
        const out = [p.get('a'), p.get('zz'), p.getAll('a'), p.has('a'), p.has('a', '3'), p.has('a', '9'), p.size];
        p.delete('a', '1');
        out.push(p.toString());
        p.set('a', 'x');
        out.push(p.toString());
        p.delete('b');
        out.push(p.toString());
        let missing = null;
        try { p.append('only-name'); } catch (e) { missing = e.constructor.name; }
        out.push(missing);
        return out;
      `),
    ).toEqual(['1', null, ['1', '3'], true, true, false, 4, 'b=2&a=3&c=4', 'b=2&a=x&c=4', 'a=x&c=4', 'TypeError']);
  });

  it('sort() is stable and compares UTF-16 code units', async () => {
    expect(
      await guest.run(`
        const p = new URLSearchParams('z=1&a=2&\\uFFFD=3&\\u00e9=4&a=1&\\uD83D\\uDE00=5');
        p.sort();
        return [...p.keys()];
      `),
    ).toEqual(['a', 'a', 'z', 'é', '\u{1F600}', '\uFFFD']);
  });

  it('serializes with the application/x-www-form-urlencoded byte set', async () => {
    expect(await guest.run(`return new URLSearchParams({ k: " !\\"#$%&'()*+,-./:;<=>?@[\\\\]^_\`{|}~é" }).toString();`)).toBe(
      'k=+%21%22%23%24%25%26%27%28%29*%2B%2C-.%2F%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E_%60%7B%7C%7D%7E%C3%A9',
    );
  });

  it('iterates live, with forEach, and has WebIDL shapes', async () => {
    expect(
      await guest.run(`
        const p = new URLSearchParams('a=1&b=2');
        const seen = [];
        for (const [k] of p) { seen.push(k); if (k === 'a') p.append('c', '3'); }
        const calls = [];
        p.forEach((v, k, target) => calls.push([k, v, target === p]));
        return [
          seen, calls, [...p.values()],
          Object.prototype.toString.call(p), Object.prototype.toString.call(p.entries()),
          URLSearchParams.prototype[Symbol.iterator] === URLSearchParams.prototype.entries,
          URLSearchParams.name,
        ];
      `),
    ).toEqual([
      ['a', 'b', 'c'],
      [['a', '1', true], ['b', '2', true], ['c', '3', true]],
      ['1', '2', '3'],
      '[object URLSearchParams]',
      '[object URLSearchParams Iterator]',
      true,
      'URLSearchParams',
    ]);
  });
});
