// Blob and File (W3C File API) and FormData (XHR Standard) inside a real isolate, including the
// multipart/form-data encoding a FormData body gets (HTML Standard) and its parsing back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

describe('Blob', () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await createGuest();
  });
  afterAll(() => guest.dispose());

  it('concatenates strings (as UTF-8), buffers, views and other blobs', async () => {
    expect(
      await guest.run(`
        const b = new Blob(['é', new Uint8Array([1, 2]).buffer, new Uint16Array([0x0403]), new DataView(new Uint8Array([9, 5]).buffer, 1), new Blob(['z'])]);
        return [b.size, [...await b.bytes()], new Blob().size, new Blob([]).type];
      `),
    ).toEqual([8, [0xc3, 0xa9, 1, 2, 3, 4, 5, 122], 0, '']);
  });

  it('copies its parts: later writes to a source buffer do not change it', async () => {
    expect(
      await guest.run(`
        const bytes = new Uint8Array([1, 2]);
        const b = new Blob([bytes]);
        bytes[0] = 9;
        const out = await b.bytes();
        out[1] = 7;
        return [...await b.bytes()];
      `),
    ).toEqual([1, 2]);
  });

  it('converts non-BufferSource parts with ToString, lone surrogates to U+FFFD', async () => {
    expect(await guest.run(`return new Blob([12, null, { toString: () => 'o' }, '\\uD800']).text()`)).toBe('12nullo\uFFFD');
  });

  it('rejects non-sequence parts and bad endings', async () => {
    expect(
      await guest.run(`
        return [() => new Blob('abc'), () => new Blob(5), () => new Blob({}), () => new Blob([], { endings: 'crlf' }), () => new Blob([], 5)]
          .map((f) => { try { f(); return 'ok'; } catch (e) { return e.constructor.name; } });
      `),
    ).toEqual(['TypeError', 'TypeError', 'TypeError', 'TypeError', 'TypeError']);
  });

  it('converts line endings to LF with endings: "native"', async () => {
    expect(await guest.run(`return [await new Blob(['a\\r\\nb\\rc\\n'], { endings: 'native' }).text(), await new Blob(['a\\r\\n']).text()]`)).toEqual([
      'a\nb\nc\n',
      'a\r\n',
    ]);
  });

  it('lowercases the type, and drops a type with characters outside U+0020..U+007E', async () => {
    expect(await guest.run(`return ['Text/HTML; Charset=UTF-8', 'a\\u00e9', 'a\\nb', ''].map((type) => new Blob([], { type }).type)`)).toEqual([
      'text/html; charset=utf-8',
      '',
      '',
      '',
    ]);
  });

  it('slice() follows the spec index rules and takes a content type', async () => {
    expect(
      await guest.run(`
        const b = new Blob(['hello world'], { type: 'text/plain' });
        const s = async (...args) => { const x = b.slice(...args); return [await x.text(), x.type]; };
        return [await s(), await s(6), await s(-5), await s(0, -6), await s(3, 1), await s(-100, 100), await s(1, 3, 'X/Y'), await s(NaN, 2), await s(0, 5).then(() => b.slice(0, 5).slice(1, 3).text())];
      `),
    ).toEqual([
      ['hello world', ''],
      ['world', ''],
      ['world', ''],
      ['hello', ''],
      ['', ''],
      ['hello world', ''],
      ['el', 'x/y'],
      ['he', ''],
      'el',
    ]);
  });

  it('reads as text, arrayBuffer, bytes and stream', async () => {
    expect(
      await guest.run(`
        const b = new Blob(['\\uFEFFhi']);
        const ab = await b.arrayBuffer();
        const streamed = await new Response(b.stream()).text();
        return [await b.text(), Object.prototype.toString.call(ab), ab.byteLength, Object.prototype.toString.call(await b.bytes()), streamed, Object.prototype.toString.call(b.stream())];
      `),
    ).toEqual(['hi', '[object ArrayBuffer]', 5, '[object Uint8Array]', 'hi', '[object ReadableStream]']);
  });

  it('has the Blob toStringTag, name and enumerable members', async () => {
    expect(await guest.run(`return [Object.prototype.toString.call(new Blob()), Blob.name, Object.keys(Blob.prototype).sort()]`)).toEqual([
      '[object Blob]',
      'Blob',
      ['arrayBuffer', 'bytes', 'size', 'slice', 'stream', 'text', 'type'],
    ]);
  });
});

describe('File', () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await createGuest();
  });
  afterAll(() => guest.dispose());

  it('is a Blob with a name and lastModified', async () => {
    expect(
      await guest.run(`
        const f = new File(['ab'], 'n\\uD800.txt', { type: 'Text/Plain', lastModified: 42.9 });
        const now = Date.now();
        const g = new File([], 'g');
        return [f.name, f.type, f.size, f.lastModified, await f.text(), f instanceof Blob, Object.getPrototypeOf(File) === Blob, Object.prototype.toString.call(f), Math.abs(g.lastModified - now) < 5000, File.name];
      `),
    ).toEqual(['n\uFFFD.txt', 'text/plain', 2, 42, 'ab', true, true, '[object File]', true, 'File']);
  });

  it('requires two arguments', async () => {
    expect(await guest.run(`try { new File(['x']); return 'ok'; } catch (e) { return e.constructor.name; }`)).toBe('TypeError');
  });
});

describe('FormData', () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await createGuest();
  });
  afterAll(() => guest.dispose());

  it('append/get/getAll/has/delete/set keep entry order', async () => {
    expect(
      await guest.run(`
        const fd = new FormData();
        fd.append('a', '1');
        fd.append('b', 2);
        fd.append('a', '3');
        const before = [fd.get('a'), fd.getAll('a'), fd.has('b'), fd.get('zz'), fd.getAll('zz')];
        fd.set('a', 'x');
        const afterSet = [...fd];
        fd.delete('b');
        return [before, afterSet, [...fd]];
      `),
    ).toEqual([['1', ['1', '3'], true, null, []], [['a', 'x'], ['b', '2']], [['a', 'x']]]);
  });

  it('wraps Blob values in a File named "blob", or the given filename', async () => {
    expect(
      await guest.run(`
        const fd = new FormData();
        const original = new File(['x'], 'orig.txt', { type: 'text/x', lastModified: 7 });
        fd.append('plain', new Blob(['b'], { type: 'image/png' }));
        fd.append('named', new Blob(['b']), 'given.bin');
        fd.append('file', original);
        fd.append('renamed', original, 'new.txt');
        const describe = (v) => [Object.prototype.toString.call(v), v.name, v.type, v.size];
        const renamed = fd.get('renamed');
        return [describe(fd.get('plain')), describe(fd.get('named')), fd.get('file') === original, describe(renamed), renamed.lastModified];
      `),
    ).toEqual([['[object File]', 'blob', 'image/png', 1], ['[object File]', 'given.bin', '', 1], true, ['[object File]', 'new.txt', 'text/x', 1], 7]);
  });

  it('refuses a filename with a string value, a missing value, and any constructor argument', async () => {
    expect(
      await guest.run(`
        return [() => new FormData().append('a', 'b', 'c'), () => new FormData().append('a'), () => new FormData().set('a', 'b', 'c'), () => new FormData({}), () => new FormData(null)]
          .map((f) => { try { f(); return 'ok'; } catch (e) { return e.constructor.name; } });
      `),
    ).toEqual(['TypeError', 'TypeError', 'TypeError', 'TypeError', 'TypeError']);
  });

  it('converts names and values to USVStrings', async () => {
    expect(await guest.run(`const fd = new FormData(); fd.append('\\uD800', { toString: () => 'v' }); return [...fd];`)).toEqual([['\uFFFD', 'v']]);
  });

  it('iterates live with keys/values/entries/forEach and has WebIDL shapes', async () => {
    expect(
      await guest.run(`
        const fd = new FormData();
        fd.append('a', '1');
        fd.append('b', '2');
        const seen = [];
        for (const [k] of fd) { seen.push(k); if (k === 'a') fd.append('c', '3'); }
        const calls = [];
        fd.forEach((v, k, target) => calls.push([k, v, target === fd]));
        return [seen, [...fd.keys()], [...fd.values()], calls, Object.prototype.toString.call(fd), Object.prototype.toString.call(fd.entries()), FormData.prototype[Symbol.iterator] === FormData.prototype.entries];
      `),
    ).toEqual([
      ['a', 'b', 'c'],
      ['a', 'b', 'c'],
      ['1', '2', '3'],
      [['a', '1', true], ['b', '2', true], ['c', '3', true]],
      '[object FormData]',
      '[object FormData Iterator]',
      true,
    ]);
  });

  describe('as a body (multipart/form-data)', () => {
    it('encodes per the HTML Standard: CRLF-normalized names and values, escaped quotes and newlines', async () => {
      expect(
        await guest.run(`
          const fd = new FormData();
          fd.append('na"me\\n', 'line1\\nline2\\rline3');
          fd.append('file', new Blob([new Uint8Array([0, 255])]), 'q"uote\\r.bin');
          fd.append('typed', new File(['t'], 't.txt', { type: 'text/plain' }));
          const response = new Response(fd);
          const boundary = response.headers.get('content-type').match(/^multipart\\/form-data; boundary=(.+)$/)[1];
          const bytes = await response.bytes();
          const text = Array.from(bytes, (b) => String.fromCharCode(b)).join('').split(boundary).join('BOUNDARY');
          return text;
        `),
      ).toBe(
        '--BOUNDARY\r\nContent-Disposition: form-data; name="na%22me%0D%0A"\r\n\r\nline1\r\nline2\r\nline3\r\n' +
          '--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="q%22uote%0D.bin"\r\nContent-Type: application/octet-stream\r\n\r\n\u0000\u00ff\r\n' +
          '--BOUNDARY\r\nContent-Disposition: form-data; name="typed"; filename="t.txt"\r\nContent-Type: text/plain\r\n\r\nt\r\n' +
          '--BOUNDARY--\r\n',
      );
    });

    it('uses a fresh boundary per body and snapshots the entries at construction', async () => {
      expect(
        await guest.run(`
          const fd = new FormData();
          fd.append('a', '1');
          const one = new Response(fd);
          fd.append('b', '2');
          const two = new Response(fd);
          const parsed = await one.formData();
          return [one.headers.get('content-type') !== two.headers.get('content-type'), [...parsed]];
        `),
      ).toEqual([true, [['a', '1']]]);
    });

    it('round-trips through formData(), files and all', async () => {
      expect(
        await guest.run(`
          const fd = new FormData();
          fd.append('text', 'é\\r\\n"x"');
          fd.append('n"\\r\\nm', 'v');
          fd.append('upload', new File([new Uint8Array([0, 13, 10, 45, 45, 255])], 'data.bin', { type: 'application/x-thing' }));
          const back = await new Response(fd).formData();
          const file = back.get('upload');
          return [back.get('text'), back.get('n"\\r\\nm'), file.name, file.type, [...await file.bytes()]];
        `),
      ).toEqual(['é\r\n"x"', 'v', 'data.bin', 'application/x-thing', [0, 13, 10, 45, 45, 255]]);
    });
  });
});
