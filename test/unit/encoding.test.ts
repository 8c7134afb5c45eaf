// TextEncoder / TextDecoder inside a real isolate: WHATWG Encoding behaviour, with cases taken
// from the spec's algorithms and WPT's encoding/ tests (textdecoder-fatal, -streaming, -labels,
// -byte-order-marks, textencoder-encodeInto).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

let guest: Guest;
beforeAll(async () => {
  guest = await createGuest();
});
afterAll(() => guest.dispose());

// Guest-side helpers: bytes in and out as plain arrays; errors as { name, message }.
const PRELUDE = `
  const bytes = (a) => Array.from(a);
  const caught = (f) => { try { f(); return null; } catch (e) { return { name: e.name, ctor: e.constructor.name }; } };
  const codes = (s) => Array.from(s, (c) => c.codePointAt(0).toString(16));
`;
const run = <T = unknown>(code: string) => guest.run<T>(PRELUDE + code);

describe('TextEncoder', () => {
  it('encodes to UTF-8 and reports its encoding', async () => {
    expect(await run(`return [new TextEncoder().encoding, bytes(new TextEncoder().encode('a\\u00e9\\u20ac\\u{1F600}'))]`)).toEqual([
      'utf-8',
      [0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80],
    ]);
  });

  it('returns a Uint8Array, empty for no argument, and converts arguments with ToString', async () => {
    expect(
      await run(`const e = new TextEncoder();
        return [e.encode() instanceof Uint8Array, e.encode().length, e.encode(undefined).length, bytes(e.encode(null)), bytes(e.encode(12))]`),
    ).toEqual([true, 0, 0, [0x6e, 0x75, 0x6c, 0x6c], [0x31, 0x32]]);
  });

  it('turns lone surrogates into U+FFFD (USVString conversion)', async () => {
    expect(await run(`const e = new TextEncoder(); return [bytes(e.encode('\\ud800')), bytes(e.encode('a\\udc00b')), bytes(e.encode('\\udbff\\udfff'))]`)).toEqual([
      [0xef, 0xbf, 0xbd],
      [0x61, 0xef, 0xbf, 0xbd, 0x62],
      [0xf4, 0x8f, 0xbf, 0xbf],
    ]);
  });

  it('throws a TypeError for a Symbol (WebIDL ToString)', async () => {
    expect(await run(`return caught(() => new TextEncoder().encode(Symbol('x')))`)).toEqual({ name: 'TypeError', ctor: 'TypeError' });
  });

  it('encodeInto writes whole code points only and counts UTF-16 units read', async () => {
    // WPT textencoder-encodeInto: a 4-byte character never straddles the end of the buffer.
    expect(
      await run(`const e = new TextEncoder();
        const results = [];
        for (const [input, size] of [['Hi', 10], ['Hi', 1], ['\\u00a0', 1], ['\\u00a0', 2], ['\\u{1D306}', 3], ['\\u{1D306}', 4], ['a\\u{1D306}b', 5], ['\\ud834', 3], ['\\ud834', 2], ['', 0]]) {
          const dest = new Uint8Array(size);
          const r = e.encodeInto(input, dest);
          results.push([r.read, r.written, bytes(dest)]);
        }
        return results;`),
    ).toEqual([
      [2, 2, [0x48, 0x69, 0, 0, 0, 0, 0, 0, 0, 0]],
      [1, 1, [0x48]],
      [0, 0, [0]],
      [1, 2, [0xc2, 0xa0]],
      [0, 0, [0, 0, 0]],
      [2, 4, [0xf0, 0x9d, 0x8c, 0x86]],
      [3, 5, [0x61, 0xf0, 0x9d, 0x8c, 0x86]],
      [1, 3, [0xef, 0xbf, 0xbd]],
      [0, 0, [0, 0]],
      [0, 0, []],
    ]);
  });

  it('encodeInto respects the view offset and rejects non-Uint8Array destinations', async () => {
    expect(
      await run(`const buffer = new Uint8Array(6);
        const r = new TextEncoder().encodeInto('xyz', buffer.subarray(2, 4));
        return [r.read, r.written, bytes(buffer),
          caught(() => new TextEncoder().encodeInto('x', new Uint16Array(4))),
          caught(() => new TextEncoder().encodeInto('x', new ArrayBuffer(4))),
          caught(() => new TextEncoder().encodeInto('x', [0, 0]))];`),
    ).toEqual([2, 2, [0, 0, 0x78, 0x79, 0, 0], ...Array(3).fill({ name: 'TypeError', ctor: 'TypeError' })]);
  });

  it('has browser-style class identity', async () => {
    expect(
      await run(`return [Object.prototype.toString.call(new TextEncoder()), TextEncoder.name,
        typeof Object.getOwnPropertyDescriptor(TextEncoder.prototype, 'encoding').get,
        Object.getOwnPropertyDescriptor(TextEncoder.prototype, Symbol.toStringTag).writable]`),
    ).toEqual(['[object TextEncoder]', 'TextEncoder', 'function', false]);
  });
});

describe('TextDecoder labels', () => {
  it('normalises labels: trims ASCII whitespace and ASCII-lowercases', async () => {
    expect(
      await run(`return [' \\t\\n\\f\\rUTF-8\\r\\n', 'utf8', 'Unicode-1-1-UTF-8', 'UTF-16', 'utf-16le', 'UnicodeFFFE', 'utf-16be',
        'latin1', 'ISO-8859-1', 'ascii', 'us-ascii', 'windows-1252', 'cp1252', 'x-user-defined'].map((l) => new TextDecoder(l).encoding)`),
    ).toEqual([
      'utf-8', 'utf-8', 'utf-8', 'utf-16le', 'utf-16le', 'utf-16be', 'utf-16be',
      'windows-1252', 'windows-1252', 'windows-1252', 'windows-1252', 'windows-1252', 'windows-1252', 'x-user-defined',
    ]);
  });

  it('throws a RangeError for unknown, unsupported and "replacement" labels', async () => {
    expect(
      await run(`return ['utf-7', 'replacement', 'iso-2022-kr', 'utf-8\\u00a0', '\\u00a0utf-8', 'utf\\u2010' + '8', 'unicode-1-1-utf-7', ''].map((l) => caught(() => new TextDecoder(l)))`),
    ).toEqual(Array(8).fill({ name: 'RangeError', ctor: 'RangeError' }));
  });

  it('defaults to utf-8 with fatal and ignoreBOM false, and reflects options', async () => {
    expect(
      await run(`const d = new TextDecoder(); const f = new TextDecoder('utf-8', { fatal: 1, ignoreBOM: 'yes' });
        return [d.encoding, d.fatal, d.ignoreBOM, f.fatal, f.ignoreBOM, caught(() => new TextDecoder('utf-8', 5)),
          Object.prototype.toString.call(d)]`),
    ).toEqual(['utf-8', false, false, true, true, { name: 'TypeError', ctor: 'TypeError' }, '[object TextDecoder]']);
  });
});

describe('TextDecoder utf-8', () => {
  it('decodes every BufferSource kind, and nothing else', async () => {
    expect(
      await run(`const d = new TextDecoder();
        const buf = new Uint8Array([0x41, 0x42, 0x43, 0x44]).buffer;
        return [d.decode(buf), d.decode(new Uint8Array(buf, 1, 2)), d.decode(new DataView(buf, 2)), d.decode(new Uint16Array(buf, 2, 1)),
          d.decode(), d.decode(undefined), caught(() => d.decode('AB')), caught(() => d.decode([65])), caught(() => d.decode(null))]`),
    ).toEqual(['ABCD', 'BC', 'CD', 'CD', '', '', ...Array(3).fill({ name: 'TypeError', ctor: 'TypeError' })]);
  });

  it('replaces each maximal invalid subpart with one U+FFFD', async () => {
    // Expected outputs follow the spec's decoder (and WPT / the Unicode "maximal subpart" practice).
    expect(
      await run(`const d = new TextDecoder();
        return [[0xff], [0x80], [0xc0, 0x80], [0xe0, 0x80], [0xe0, 0xa0], [0xed, 0xa0, 0x80], [0xf0, 0x90, 0x80], [0xf1, 0x80, 0x41],
          [0xf4, 0x90, 0x80, 0x80], [0xf5], [0xc2, 0x41], [0x41, 0xe2, 0x82], [0xef, 0xbf, 0xbd]]
          .map((b) => codes(d.decode(new Uint8Array(b))).join(' '))`),
    ).toEqual([
      'fffd', 'fffd', 'fffd fffd', 'fffd fffd', 'fffd', 'fffd fffd fffd', 'fffd', 'fffd 41',
      'fffd fffd fffd fffd', 'fffd', 'fffd 41', '41 fffd', 'fffd',
    ]);
  });

  it('fatal mode throws a TypeError for every invalid sequence (WPT textdecoder-fatal)', async () => {
    const invalid = [[0xff], [0xc0], [0xe0], [0xf0], [0xf8], [0xfc], [0xfe], [0x80], [0xc2], [0xe2, 0x82], [0xf0, 0x9f, 0x98],
      [0xc0, 0x80], [0xe0, 0x80, 0x80], [0xf0, 0x80, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80]];
    expect(
      await run(`return ${JSON.stringify(invalid)}.map((b) => caught(() => new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(b))))`),
    ).toEqual(Array(invalid.length).fill({ name: 'TypeError', ctor: 'TypeError' }));
    // ...and accepts the boundary values just inside the valid ranges.
    expect(
      await run(`const d = new TextDecoder('utf-8', { fatal: true });
        return [[0x7f], [0xc2, 0x80], [0xdf, 0xbf], [0xe0, 0xa0, 0x80], [0xed, 0x9f, 0xbf], [0xee, 0x80, 0x80], [0xf0, 0x90, 0x80, 0x80], [0xf4, 0x8f, 0xbf, 0xbf]]
          .map((b) => codes(d.decode(new Uint8Array(b)))[0])`),
    ).toEqual(['7f', '80', '7ff', '800', 'd7ff', 'e000', '10000', '10ffff']);
  });

  it('a fatal decoder is usable again after throwing', async () => {
    expect(
      await run(`const d = new TextDecoder('utf-8', { fatal: true });
        const first = caught(() => d.decode(new Uint8Array([0xe2, 0x82]), { stream: true }) + d.decode(new Uint8Array([0x41])));
        return [first, d.decode(new Uint8Array([0x42]))]`),
    ).toEqual([{ name: 'TypeError', ctor: 'TypeError' }, 'B']);
  });

  it('strips one leading BOM unless ignoreBOM, and only at the start of a stream', async () => {
    expect(
      await run(`const bom = [0xef, 0xbb, 0xbf];
        const u = (a) => new Uint8Array(a);
        const d = new TextDecoder(); const keep = new TextDecoder('utf-8', { ignoreBOM: true });
        const s = new TextDecoder();
        const streamed = s.decode(u([0xef]), { stream: true }) + s.decode(u([0xbb, 0xbf]), { stream: true }) + s.decode(u([0x41, ...bom]));
        return [codes(d.decode(u([...bom, 0x41]))), codes(d.decode(u([...bom, ...bom]))), codes(keep.decode(u([...bom, 0x41]))),
          codes(streamed), codes(d.decode(u([0x41, ...bom])))]`),
    ).toEqual([['41'], ['feff'], ['feff', '41'], ['41', 'feff'], ['41', 'feff']]);
  });

  it('streaming decode gives the same text whatever the chunk boundaries', async () => {
    expect(
      await run(`const text = 'a\\u00e9\\u20ac\\u{1F600}z\\u0800\\uffff\\u{10FFFF}';
        const data = new TextEncoder().encode(text);
        const failures = [];
        for (let i = 0; i <= data.length; i++) for (let j = i; j <= data.length; j++) {
          const d = new TextDecoder();
          const out = d.decode(data.subarray(0, i), { stream: true }) + d.decode(data.subarray(i, j), { stream: true }) + d.decode(data.subarray(j));
          if (out !== text) failures.push([i, j]);
        }
        return failures;`),
    ).toEqual([]);
  });

  it('a truncated sequence at the end of a stream becomes U+FFFD only when flushed', async () => {
    expect(
      await run(`const d = new TextDecoder();
        const parts = [d.decode(new Uint8Array([0x41, 0xf0, 0x9f]), { stream: true }), d.decode(new Uint8Array([0x98]), { stream: true }), d.decode()];
        const again = d.decode(new Uint8Array([0x42]));
        return [parts.map((p) => codes(p)), codes(again)]`),
    ).toEqual([[['41'], [], ['fffd']], ['42']]);
  });

  it('a non-streaming call after a streaming one resets the decoder (spec "do not flush")', async () => {
    expect(
      await run(`const d = new TextDecoder();
        d.decode(new Uint8Array([0xe2, 0x82]), { stream: true });
        const flushed = d.decode(new Uint8Array([0xac]));   // completes the euro sign and flushes
        const fresh = d.decode(new Uint8Array([0xac]));     // new stream: a lone continuation byte
        return [codes(flushed), codes(fresh)]`),
    ).toEqual([['20ac'], ['fffd']]);
  });

  it('round-trips large mixed text (exercises the chunked string building)', async () => {
    expect(
      await run(`let text = '';
        for (let i = 0; i < 42000; i++) text += String.fromCodePoint([0x41, 0xe9, 0x20ac, 0x1f600, 0x7f, 0x800][i % 6]);
        const ascii = 'x'.repeat(300000);
        const d = new TextDecoder(); const e = new TextEncoder();
        return [d.decode(e.encode(text)) === text, d.decode(e.encode(ascii)) === ascii, e.encode(text).length]`),
    ).toEqual([true, true, 7000 * (1 + 2 + 3 + 4 + 1 + 3)]);
  });
});

describe('TextDecoder utf-16 and single-byte', () => {
  it('decodes utf-16le and utf-16be, including surrogate pairs and the BOM', async () => {
    expect(
      await run(`const le = new TextDecoder('utf-16le'), be = new TextDecoder('utf-16be');
        return [codes(le.decode(new Uint8Array([0x41, 0x00, 0x3d, 0xd8, 0x00, 0xde]))), codes(be.decode(new Uint8Array([0x00, 0x41, 0xd8, 0x3d, 0xde, 0x00]))),
          codes(le.decode(new Uint8Array([0xff, 0xfe, 0x41, 0x00]))), codes(be.decode(new Uint8Array([0xfe, 0xff, 0x00, 0x41])))]`),
    ).toEqual([['41', '1f600'], ['41', '1f600'], ['41'], ['41']]);
  });

  it('replaces lone surrogates and an odd trailing byte in utf-16', async () => {
    expect(
      await run(`const le = new TextDecoder('utf-16le');
        return [codes(le.decode(new Uint8Array([0x00, 0xd8, 0x41, 0x00]))), codes(le.decode(new Uint8Array([0x00, 0xdc]))),
          codes(le.decode(new Uint8Array([0x41, 0x00, 0x42]))), caught(() => new TextDecoder('utf-16le', { fatal: true }).decode(new Uint8Array([0x00, 0xd8])))]`),
    ).toEqual([['fffd', '41'], ['fffd'], ['41', 'fffd'], { name: 'TypeError', ctor: 'TypeError' }]);
  });

  it('streams utf-16le across odd chunk boundaries', async () => {
    expect(
      await run(`const data = new Uint8Array([0x41, 0x00, 0x3d, 0xd8, 0x00, 0xde, 0xe9, 0x00]);
        const out = [];
        for (let i = 0; i <= data.length; i++) {
          const d = new TextDecoder('utf-16le');
          out.push(d.decode(data.subarray(0, i), { stream: true }) + d.decode(data.subarray(i)));
        }
        return out.every((s) => s === 'A\\u{1F600}\\u00e9')`),
    ).toBe(true);
  });

  it('windows-1252 (and its latin1/ascii labels) maps 0x80-0x9F through the spec index', async () => {
    expect(
      await run(`const b = new Uint8Array([0x41, 0x80, 0x81, 0x8d, 0x9f, 0xa0, 0xe9, 0xff]);
        return [codes(new TextDecoder('windows-1252').decode(b)), new TextDecoder('latin1').decode(b) === new TextDecoder('ascii').decode(b),
          codes(new TextDecoder('x-user-defined').decode(new Uint8Array([0x41, 0x80, 0xff])))]`),
    ).toEqual([['41', '20ac', '81', '8d', '178', 'a0', 'e9', 'ff'], true, ['41', 'f780', 'f7ff']]);
  });
});
