// console.* formatting inside a real isolate: Node's util.format / util.inspect output (which
// workerd's console also prints). Expected strings are what Node 20 prints for the same values.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

let guest: Guest;
beforeAll(async () => {
  guest = await createGuest();
});
afterAll(() => guest.dispose());

/** Runs `setup`, then console.log(<args>), and returns the line the host received. */
async function logged(args: string, setup = ''): Promise<string> {
  const before = guest.logs.length;
  await guest.run(`${setup}; console.log(${args});`);
  const lines = guest.logs.slice(before);
  expect(lines).toHaveLength(1);
  return lines[0].message;
}

describe('util.format placeholders', () => {
  it('substitutes %s %d %i %f %j and %%', async () => {
    expect(await logged(`'%s is %d years, %i%% sure, pi=%f, %j', 'Bob', 42.5, '42.9', '3.14abc', { a: [1] }`)).toBe(
      'Bob is 42.5 years, 42% sure, pi=3.14, {"a":[1]}',
    );
  });

  it('%s prints numbers and bigints as such and inspects plain objects at depth 0', async () => {
    expect(await logged(`'%s|%s|%s|%s|%s|%s', -0, 10n, { a: { b: 1 } }, [1, [2]], null, Symbol('s')`)).toBe(
      "-0|10n|{ a: [Object] }|[ 1, [Array] ]|null|Symbol(s)",
    );
  });

  it('%s uses a user-defined toString', async () => {
    expect(await logged(`'%s / %s', new (class Money { toString() { return '$5'; } })(), new (class Plain {})()`)).toBe('$5 / Plain {}');
  });

  it('%d, %i and %f of odd values', async () => {
    expect(await logged(`'%d %d %d %i %f %f', '0x10', {}, Symbol('x'), 1.9e21, 'abc', 10n`)).toBe('16 NaN NaN 1 NaN 10');
  });

  it('%o shows hidden properties at depth 4, %O inspects, %c is dropped', async () => {
    expect(await logged(`'%o|%O|%cstyled', [1], { a: { b: { c: { d: 1 } } } }, 'color: red'`)).toBe(
      '[ 1, [length]: 1 ]|{ a: { b: { c: [Object] } } }|styled',
    );
  });

  it('%j prints [Circular] for cycles', async () => {
    expect(await logged(`'%j', o`, 'const o = {}; o.o = o')).toBe('[Circular]');
  });

  it('leaves unknown or unmatched placeholders and appends extra arguments', async () => {
    expect(await logged(`'%x %s %s', 'a'`)).toBe('%x a %s');
    expect(await logged(`'100%', 'done', 1, { a: 'x' }`)).toBe("100% done 1 { a: 'x' }");
  });

  it('joins non-format arguments with spaces; strings raw at top level, quoted inside objects', async () => {
    expect(await logged(`1, 'two', ['three'], { four: "it's" }, undefined, null`)).toBe(`1 two [ 'three' ] { four: "it's" } undefined null`);
  });
});

describe('util.inspect layout', () => {
  it('prints nested objects to depth 2', async () => {
    expect(await logged(`{ a: { b: { c: { d: 1 } } }, arr: [[[[1]]]] }`)).toBe('{ a: { b: { c: [Object] } }, arr: [ [ [Array] ] ] }');
  });

  it('breaks lines past 80 columns and groups long arrays into columns', async () => {
    expect(await logged(`{ aaaaaaaaaaaa: 'bbbbbbbbbbbbbbbbbbbbbbb', cccccccccccccccccccc: 'ddddddddddddddddddd', eeeeeeeeeee: 1 }`)).toBe(
      "{\n  aaaaaaaaaaaa: 'bbbbbbbbbbbbbbbbbbbbbbb',\n  cccccccccccccccccccc: 'ddddddddddddddddddd',\n  eeeeeeeeeee: 1\n}",
    );
    expect(await logged(`Array.from({ length: 26 }, (_, i) => i * 3)`)).toBe(
      '[\n   0,  3,  6,  9, 12, 15, 18, 21,\n  24, 27, 30, 33, 36, 39, 42, 45,\n  48, 51, 54, 57, 60, 63, 66, 69,\n  72, 75\n]',
    );
  });

  it('puts at most three inner levels on one line', async () => {
    expect(await logged(`'%o', { a: { b: { c: { d: 1 } } } }`)).toBe('{\n  a: { b: { c: { d: 1 } } }\n}');
    expect(await logged(`'%o', { x: 1, a: { b: { c: {} } } }`)).toBe('{ x: 1, a: { b: { c: {} } } }');
  });

  it('truncates arrays after 100 items', async () => {
    const line = await logged(`new Array(120).fill(0)`);
    expect(line.endsWith('  ... 20 more items\n]')).toBe(true);
  });

  it('shows holes, extra keys, symbols, quoted keys and accessors', async () => {
    expect(await logged(`Object.assign([1, , 3, , , 6], { extra: true })`)).toBe('[ 1, <1 empty item>, 3, <2 empty items>, 6, extra: true ]');
    expect(
      await logged(`o`, `const o = { 'a-b': 1, ok: 2, [Symbol('q')]: 3 }; Object.defineProperty(o, 'g', { get() { return 1; }, enumerable: true });
        Object.defineProperty(o, 'gs', { get() {}, set(v) {}, enumerable: true }); Object.defineProperty(o, 'hidden', { value: 1 })`),
    ).toBe("{ 'a-b': 1, ok: 2, g: [Getter], gs: [Getter/Setter], [Symbol(q)]: 3 }");
  });

  it('quotes and escapes strings like Node', async () => {
    expect(await logged(`["it's", 'say "hi"', 'both \\'"', 'tab\\there\\n', '\\x00\\x7f', 'lone \\ud800']`)).toBe(
      `[\n  "it's",\n  'say "hi"',\n  \`both '"\`,\n  'tab\\there\\n',\n  '\\x00\\x7F',\n  'lone \\ud800'\n]`,
    );
  });

  it('names classes and null prototypes, and marks circular references', async () => {
    expect(await logged(`new Foo(), new Empty(), Object.assign(Object.create(null), { a: 1 }), circular`, `class Foo { constructor() { this.a = 1; } }
      class Empty {} const circular = { name: 'c' }; circular.self = circular; circular.list = [circular]`)).toBe(
      "Foo { a: 1 } Empty {} [Object: null prototype] { a: 1 } <ref *1> { name: 'c', self: [Circular *1], list: [ [Circular *1] ] }",
    );
  });

  it('prints built-in types', async () => {
    expect(
      await logged(
        `new Map([['k', { v: 1 }]]), new Set([1, 'a']), new Map(), new Date(0), new Date(NaN), /x\\/y/gi, 7n, -0, new Number(3), new String('s'),
         new Uint8Array([1, 2]), new Uint8Array([1, 2]).buffer, new WeakMap(), Symbol('sym')`,
      ),
    ).toBe(
      "Map(1) { 'k' => { v: 1 } } Set(2) { 1, 'a' } Map(0) {} 1970-01-01T00:00:00.000Z Invalid Date /x\\/y/gi 7n -0 [Number: 3] [String: 's'] " +
        'Uint8Array(2) [ 1, 2 ] ArrayBuffer { [Uint8Contents]: <01 02>, byteLength: 2 } WeakMap { <items unknown> } Symbol(sym)',
    );
  });

  it('prints functions and classes', async () => {
    expect(await logged(`function named() {}, () => {}, async function af() {}, function* gen() {}, class A {}, class B extends A {}, Object.assign(function f() {}, { x: 1 })`, 'class A {}')).toBe(
      '[Function: named] [Function (anonymous)] [AsyncFunction: af] [GeneratorFunction: gen] [class A] [class B extends A] [Function: f] { x: 1 }',
    );
  });

  it('prints errors with their stack, extra properties and cause', async () => {
    const line = await logged(`e`, `const e = new TypeError('bad thing', { cause: 'why' }); e.code = 'E_BAD'`);
    expect(line).toMatch(/^TypeError: bad thing\n {4}at .+/);
    expect(line).toMatch(/\{\n {2}code: 'E_BAD',\n {2}\[cause\]: 'why'\n\}$/);
  });

  it('prints an error without frames in brackets, and nested errors indented', async () => {
    expect(await logged(`e`, `const e = new RangeError('no frames'); e.stack = 'RangeError: no frames'`)).toBe('[RangeError: no frames]');
    expect(await logged(`{ err: e }`, `const e = new Error('inner'); e.stack = 'Error: inner\\n    at f (w.js:1:1)'`)).toBe(
      '{\n  err: Error: inner\n      at f (w.js:1:1)\n}',
    );
  });

  it('prints DOMException like Node: class name with the error name', async () => {
    expect(await logged(`e`, `const e = new DOMException('gone', 'NotFoundError'); e.stack = e.stack.split('\\n')[0]`)).toBe(
      '[DOMException [NotFoundError]: gone]',
    );
  });

  it('calls nodejs.util.inspect.custom with depth and options', async () => {
    expect(
      await logged(`{ wrapped: new Secret() }`, `class Secret { [Symbol.for('nodejs.util.inspect.custom')](depth, options, inspect) {
        return 'Secret<' + depth + ',' + options.breakLength + ',' + typeof inspect + '>'; } }`),
    ).toBe('{ wrapped: Secret<1,80,function> }');
  });

  it('never throws, whatever the value does', async () => {
    expect(await logged(`p`, `const p = new Proxy({}, { ownKeys() { throw new Error('trap'); } })`)).toBe('[Inspection failed: trap]');
    expect(await logged(`'%s', bad`, `const bad = { toString() { throw new Error('nope'); } }`)).toBe('[Formatting failed: nope]');
  });
});

describe('platform objects', () => {
  it('show their attributes', async () => {
    expect(await logged(`new AbortController().signal, new TextEncoder(), crypto, navigator`)).toBe(
      "AbortSignal { aborted: false, reason: undefined, onabort: null } TextEncoder { encoding: 'utf-8' } Crypto { subtle: SubtleCrypto {} } " +
        "Navigator { userAgent: 'Cloudflare-Workers', hardwareConcurrency: 1 }",
    );
  });

  it('show an event with its own isTrusted value', async () => {
    const line = await logged(`new Event('ping')`);
    // The own (unforgeable) attribute first, then the prototype's.
    expect(line).toMatch(/^Event \{\n {2}isTrusted: false,\n {2}type: 'ping',\n {2}target: null,/);
    expect(line).toContain('  defaultPrevented: false,');
  });

  it('show Headers as their entries', async () => {
    expect(await logged(`new Headers([['content-type', 'text/plain'], ['x-a', '1']])`)).toBe("Headers { 'content-type' => 'text/plain', 'x-a' => '1' }");
  });

  it('show Request attributes, with nested headers', async () => {
    const line = await logged(`new Request('https://example.com/a', { method: 'POST', headers: { 'x-k': 'v' } })`);
    expect(line).toMatch(/^Request \{\n/);
    expect(line).toContain("method: 'POST'");
    expect(line).toContain("url: 'https://example.com/a'");
    expect(line).toContain("headers: Headers { 'x-k' => 'v' }");
  });
});
