// The Body mixin (Fetch §5.2) inside a real isolate: every source kind through every reader, the
// used/locked rules, the lazily made stream, and the module-internal bridge helpers the
// dispatcher uses (bodyForWire, createIncomingRequest/Response), which guest code cannot reach and
// are therefore tested in an isolate of their own.
import { build } from 'esbuild';
import ivm from 'isolated-vm';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vendorShims } from '../../scripts/sandbox-vendor-shims.mjs';
import { createGuest, type Guest } from '../helpers/guest.js';

describe('Body', () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await createGuest();
  });
  afterAll(() => guest.dispose());

  describe('readers on each source kind', () => {
    it('reads a string body as text, json, bytes, arrayBuffer and blob', async () => {
      expect(
        await guest.run(`
          const make = () => new Response('{"é":1}');
          const blob = await make().blob();
          return [
            await make().text(),
            await make().json(),
            [...await make().bytes()],
            (await make().arrayBuffer()).byteLength,
            Object.prototype.toString.call(await make().arrayBuffer()),
            [blob.type, blob.size, await blob.text()],
          ];
        `),
      ).toEqual(['{"é":1}', { é: 1 }, [123, 34, 195, 169, 34, 58, 49, 125], 8, '[object ArrayBuffer]', ['text/plain;charset=UTF-8', 8, '{"é":1}']]);
    });

    it('copies BufferSource bodies at construction (later writes do not leak in)', async () => {
      expect(
        await guest.run(`
          const bytes = new Uint8Array([104, 105, 33]);
          const fromView = new Response(bytes.subarray(0, 2));
          const buffer = new Uint8Array([1, 2, 3]).buffer;
          const fromBuffer = new Response(buffer);
          const fromDataView = new Response(new DataView(new Uint8Array([65, 66, 67]).buffer, 1, 2));
          bytes[0] = 0;
          new Uint8Array(buffer)[0] = 9;
          const ab = await fromBuffer.arrayBuffer();
          return [await fromView.text(), [...new Uint8Array(ab)], ab === buffer, await fromDataView.text()];
        `),
      ).toEqual(['hi', [1, 2, 3], false, 'BC']);
    });

    it('reads Blob, URLSearchParams and FormData bodies', async () => {
      expect(
        await guest.run(`
          const fd = new FormData();
          fd.append('k', 'v');
          const multipart = await new Response(fd).text();
          return [
            await new Response(new Blob(['a', new Uint8Array([98])])).text(),
            await new Response(new URLSearchParams({ a: '1 2', b: 'é' })).text(),
            /^------CinderFormBoundary\\w+\\r\\nContent-Disposition: form-data; name="k"\\r\\n\\r\\nv\\r\\n------CinderFormBoundary\\w+--\\r\\n$/.test(multipart),
          ];
        `),
      ).toEqual(['ab', 'a=1+2&b=%C3%A9', true]);
    });

    it('reads a stream body to the end, accepting any BufferSource chunk', async () => {
      expect(
        await guest.run(`
          const stream = new ReadableStream({
            start(c) {
              c.enqueue(new Uint8Array([104]));
              c.enqueue(new Uint8Array([0, 105, 0]).subarray(1, 2));
              c.enqueue(new Uint16Array([0x2121]));
              c.enqueue(new ArrayBuffer(1));
              c.close();
            },
          });
          return [...await new Response(stream).bytes()];
        `),
      ).toEqual([104, 105, 33, 33, 0]);
    });

    it('rejects a stream chunk that is not bytes, with a TypeError', async () => {
      expect(
        await guest.run(`
          const body = new Response(ReadableStream.from(['text']));
          return await body.text().then(() => 'resolved', (e) => e.constructor.name + ': ' + e.message);
        `),
      ).toBe('TypeError: This ReadableStream did not return bytes.');
    });

    it('text() strips one UTF-8 BOM and replaces invalid bytes with U+FFFD', async () => {
      expect(
        await guest.run(`
          return [
            await new Response(new Uint8Array([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf, 0x41])).text(),
            await new Response(new Uint8Array([0x61, 0xff, 0xc3])).text(),
          ];
        `),
      ).toEqual(['\uFEFFA', 'a\uFFFD\uFFFD']);
    });

    it('json() rejects with the SyntaxError of JSON.parse', async () => {
      expect(await guest.run(`return new Response('{nope').json().then(() => 'ok', (e) => e.constructor.name)`)).toBe('SyntaxError');
    });

    it('a null body reads as empty and never becomes used', async () => {
      expect(
        await guest.run(`
          const r = new Response(null);
          return [await r.text(), (await r.arrayBuffer()).byteLength, (await r.blob()).size, r.bodyUsed, r.body];
        `),
      ).toEqual(['', 0, 0, false, null]);
    });
  });

  describe('used and locked bodies', () => {
    it('rejects a second read with a TypeError (every reader)', async () => {
      expect(
        await guest.run(`
          const out = [];
          for (const reader of ['text', 'json', 'arrayBuffer', 'bytes', 'blob', 'formData']) {
            const r = new Response('a=1', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
            await r.text();
            out.push(await r[reader]().then(() => 'resolved', (e) => e.constructor.name));
          }
          return out;
        `),
      ).toEqual(Array(6).fill('TypeError'));
    });

    it('reports bodyUsed once reading starts, through any path', async () => {
      expect(
        await guest.run(`
          const a = new Response('x');
          const before = a.bodyUsed;
          const pending = a.text();
          const during = a.bodyUsed;
          await pending;
          const b = new Response('y');
          const reader = b.body.getReader();
          const afterGetReader = b.bodyUsed;
          await reader.read();
          return [before, during, a.bodyUsed, afterGetReader, b.bodyUsed];
        `),
      ).toEqual([false, true, true, false, true]);
    });

    it('rejects reading a body whose stream is locked by a reader', async () => {
      expect(
        await guest.run(`
          const r = new Response('x');
          r.body.getReader();
          return [r.bodyUsed, await r.text().then(() => 'resolved', (e) => e.constructor.name)];
        `),
      ).toEqual([false, 'TypeError']);
    });

    it('refuses a locked or already-read stream as a new body', async () => {
      expect(
        await guest.run(`
          const locked = new ReadableStream();
          locked.getReader();
          const read = ReadableStream.from([new Uint8Array(1), new Uint8Array(1)]);
          await read.getReader().read().then(() => {});
          const out = [];
          for (const s of [locked]) { try { new Response(s); out.push('ok'); } catch (e) { out.push(e.constructor.name); } }
          const disturbed = new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(1)); } });
          const reader = disturbed.getReader();
          await reader.read();
          reader.releaseLock();
          try { new Response(disturbed); out.push('ok'); } catch (e) { out.push(e.constructor.name); }
          return out;
        `),
      ).toEqual(['TypeError', 'TypeError']);
    });
  });

  describe('the body stream', () => {
    it('is made lazily, once, as a BYOB-capable byte stream', async () => {
      expect(
        await guest.run(`
          const r = new Response('hello world');
          const body = r.body;
          const reader = body.getReader({ mode: 'byob' });
          const first = await reader.read(new Uint8Array(5));
          reader.releaseLock();
          return [body === r.body, Object.prototype.toString.call(body), String.fromCharCode(...first.value), await r.text().catch((e) => e.constructor.name)];
        `),
      ).toEqual([true, '[object ReadableStream]', 'hello', 'TypeError']);
    });

    it('after text(), .body is a closed, disturbed stream', async () => {
      expect(
        await guest.run(`
          const r = new Response('x');
          await r.text();
          const body = r.body;
          const { done } = await body.getReader().read();
          return [body !== null, done, r.bodyUsed];
        `),
      ).toEqual([true, true, true]);
    });

    it('streams a body of more than one chunk intact', async () => {
      expect(
        await guest.run(`
          const big = 'x'.repeat(200000) + 'end';
          const chunks = [];
          for await (const chunk of new Response(big).body) chunks.push(chunk.length);
          const text = await new Response(new Response(big).body).text();
          return [chunks.length > 1, chunks.reduce((a, b) => a + b, 0), text.length, text.endsWith('end')];
        `),
      ).toEqual([true, 200003, 200003, true]);
    });
  });

  describe('blob() and formData()', () => {
    it('blob() types the Blob with the serialized MIME type of Content-Type', async () => {
      expect(
        await guest.run(`
          const type = async (ct) => (await new Response('x', ct === undefined ? {} : { headers: { 'content-type': ct } }).blob()).type;
          return [await type('Text/HTML; Charset="UTF-8"'), await type('not a mime type'), await type('text/plain, application/json'), await type('text/plain;charset=gbk, text/plain')];
        `),
      ).toEqual(['text/html;charset=UTF-8', '', 'application/json', 'text/plain;charset=gbk']);
    });

    it('formData() parses application/x-www-form-urlencoded', async () => {
      expect(
        await guest.run(`
          const fd = await new Response('a=1&b=%20+x&a=%C3%A9&c', { headers: { 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' } }).formData();
          return [...fd];
        `),
      ).toEqual([['a', '1'], ['b', '  x'], ['a', 'é'], ['c', '']]);
    });

    it('formData() parses multipart/form-data, files included', async () => {
      expect(
        await guest.run(`
          const body = 'preamble\\r\\n--XyZ\\r\\nContent-Disposition: form-data; name="field"\\r\\n\\r\\nvalue\\r\\nline 2\\r\\n' +
            '--XyZ\\r\\nContent-Disposition: form-data; name="up%22load"; filename="a%22b.txt"\\r\\nContent-Type: text/x-test\\r\\n\\r\\nfile body\\r\\n' +
            '--XyZ\\r\\ncontent-disposition: form-data; name="nofiletype"; filename="n.bin"\\r\\n\\r\\n\\x01\\r\\n--XyZ--';
          const fd = await new Response(body, { headers: { 'content-type': 'multipart/form-data; boundary="XyZ"' } }).formData();
          const file = fd.get('up"load');
          const plain = fd.get('nofiletype');
          return [fd.get('field'), Object.prototype.toString.call(file), file.name, file.type, await file.text(), plain.type, plain.size];
        `),
      ).toEqual(['value\r\nline 2', '[object File]', 'a"b.txt', 'text/x-test', 'file body', 'text/plain', 1]);
    });

    it('formData() rejects other types, a missing boundary, and malformed multipart', async () => {
      expect(
        await guest.run(`
          const attempt = (body, ct) => new Response(body, { headers: ct ? { 'content-type': ct } : {} }).formData().then(() => 'ok', (e) => e.constructor.name);
          return [
            await attempt('a=1', 'text/plain'),
            await attempt(new Uint8Array([1])),
            await attempt('--b\\r\\n', 'multipart/form-data'),
            await attempt('no delimiter here', 'multipart/form-data; boundary=b'),
            await attempt('--b\\r\\nContent-Disposition: form-data; name="x"\\r\\n\\r\\nunterminated', 'multipart/form-data; boundary=b'),
            await attempt('--b\\r\\nContent-Disposition: attachment\\r\\n\\r\\nx\\r\\n--b--', 'multipart/form-data; boundary=b'),
          ];
        `),
      ).toEqual(['TypeError', 'TypeError', 'TypeError', 'TypeError', 'TypeError', 'TypeError']);
    });
  });
});

describe('Body internals used by the dispatcher', () => {
  let isolate: ivm.Isolate;
  let context: ivm.Context;
  const run = async <T>(code: string): Promise<T> =>
    (await context.eval(`(async () => { ${code} })()`, { promise: true, copy: true } as ivm.ContextEvalOptions)) as T;

  beforeAll(async () => {
    // A bundle of just the fetch family that also exposes the module-internal helpers.
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const { outputFiles } = await build({
      stdin: {
        contents: `
          import { bodyForWire, takeStreamForWire } from './sandbox/api/body.js';
          import { fetchGlobals } from './sandbox/api/fetch-globals.js';
          import { createIncomingRequest } from './sandbox/api/request.js';
          import { createIncomingResponse } from './sandbox/api/response.js';
          Object.assign(globalThis, fetchGlobals, { bodyForWire, takeStreamForWire, createIncomingRequest, createIncomingResponse });
        `,
        resolveDir: root,
        loader: 'ts',
        sourcefile: 'fetch-internals.ts',
      },
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'neutral',
      target: 'es2022',
      mainFields: ['module', 'main'],
      conditions: ['worker', 'browser'],
      plugins: [vendorShims],
      logLevel: 'error',
    });
    isolate = new ivm.Isolate({ memoryLimit: 64 });
    context = isolate.createContextSync();
    context.evalSync(outputFiles[0].text);
  });
  afterAll(() => isolate.dispose());

  it('bodyForWire() hands a string body over as the same string, unencoded', async () => {
    expect(
      await run(`
        const r = new Response('héllo \\u{1F600}');
        const wire = await bodyForWire(r);
        return [typeof wire, wire, r.bodyUsed];
      `),
    ).toEqual(['string', 'héllo \u{1F600}', true]);
  });

  it('bodyForWire() gives bytes as an ArrayBuffer of exactly the body length', async () => {
    expect(
      await run(`
        const view = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
        const fromView = await bodyForWire(new Response(view));
        const fromBlob = await bodyForWire(new Response(new Blob(['ab']).slice(1)));
        const fromStream = await bodyForWire(new Response(ReadableStream.from([new Uint8Array([1]), new Uint8Array([2, 3])])));
        const empty = await bodyForWire(new Response(new Uint8Array(0)));
        const describe = (ab) => [Object.prototype.toString.call(ab), ab.byteLength, [...new Uint8Array(ab)]];
        return [describe(fromView), describe(fromBlob), describe(fromStream), describe(empty)];
      `),
    ).toEqual([
      ['[object ArrayBuffer]', 3, [1, 2, 3]],
      ['[object ArrayBuffer]', 1, [98]],
      ['[object ArrayBuffer]', 3, [1, 2, 3]],
      ['[object ArrayBuffer]', 0, []],
    ]);
  });

  it('bodyForWire() sends URLSearchParams as a string and FormData as multipart bytes', async () => {
    expect(
      await run(`
        const fd = new FormData();
        fd.append('a', '1');
        const response = new Response(fd);
        const multipart = await bodyForWire(response);
        const boundary = response.headers.get('content-type').split('boundary=')[1];
        const text = String.fromCharCode(...new Uint8Array(multipart));
        return [await bodyForWire(new Response(new URLSearchParams('a=b c'))), text.startsWith('--' + boundary + '\\r\\n'), text.endsWith('--' + boundary + '--\\r\\n')];
      `),
    ).toEqual(['a=b+c', true, true]);
  });

  it('bodyForWire() returns null for no body and rejects a used body', async () => {
    expect(
      await run(`
        const used = new Response('x');
        await used.text();
        return [await bodyForWire(new Response(null)), await bodyForWire(used).then(() => 'resolved', (e) => e.constructor.name)];
      `),
    ).toEqual([null, 'TypeError']);
  });

  it('takeStreamForWire() hands over a stream body (marking it used) and leaves others to bodyForWire()', async () => {
    expect(
      await run(`
        const streamed = new Response(ReadableStream.from([new Uint8Array([104, 105])]));
        const stream = takeStreamForWire(streamed);
        const text = await new Response(stream).text();
        const plain = new Response('plain');
        return [text, streamed.bodyUsed, takeStreamForWire(plain), plain.bodyUsed, await bodyForWire(plain), takeStreamForWire(new Response(null))];
      `),
    ).toEqual(['hi', true, null, false, 'plain', null]);
  });

  it('createIncomingRequest() makes immutable headers, manual redirects, and adopts the buffer', async () => {
    expect(
      await run(`
        const buffer = new Uint8Array([104, 105]).buffer;
        const r = createIncomingRequest({ method: 'POST', url: 'https://Example.com/a b', headers: [['X-A', '1'], ['x-a', '2'], ['Content-Type', 'text/plain']], body: new Uint8Array(buffer), cf: { colo: 'LHR' } });
        let error = null;
        try { r.headers.set('x', 'y'); } catch (e) { error = e.message; }
        const ab = await r.arrayBuffer();
        const get = createIncomingRequest({ method: 'GET', url: 'https://example.com/', headers: [], body: new Uint8Array(1) });
        const upload = createIncomingRequest({ method: 'PUT', url: 'https://example.com/', headers: [], body: ReadableStream.from([new Uint8Array([111, 107])]) });
        return [r.url, r.method, r.redirect, r.headers.get('x-a'), error, ab === buffer, r.cf, get.body, await upload.text()];
      `),
    ).toEqual(['https://example.com/a%20b', 'POST', 'manual', '1, 2', "Can't modify immutable headers.", true, { colo: 'LHR' }, null, 'ok']);
  });

  it('a clone of an incoming request keeps its own copy of the bytes', async () => {
    expect(
      await run(`
        const r = createIncomingRequest({ method: 'PUT', url: 'https://example.com/', headers: [], body: new Uint8Array([1, 2]) });
        const c = r.clone();
        const first = new Uint8Array(await r.arrayBuffer());
        first[0] = 99;
        return [[...first], [...new Uint8Array(await c.arrayBuffer())], c.headers.has('x') === false];
      `),
    ).toEqual([[99, 2], [1, 2], true]);
  });

  it('createIncomingResponse() allows any status, drops bodies of null-body statuses, and is immutable', async () => {
    expect(
      await run(`
        const r = createIncomingResponse({ status: 404, statusText: 'Not Found', headers: [['a', 'b']], body: new Uint8Array([120]), url: 'https://x/', redirected: true });
        const noBody = createIncomingResponse({ status: 304, statusText: '', headers: [], body: new Uint8Array([1]), url: '', redirected: false });
        const streamed = createIncomingResponse({ status: 200, statusText: 'OK', headers: [], body: ReadableStream.from([new Uint8Array([111, 107])]), url: '', redirected: false });
        const text = createIncomingResponse({ status: 200, statusText: '', headers: [], body: 'inline', url: '', redirected: false });
        let error = null;
        try { r.headers.append('c', 'd'); } catch (e) { error = e.constructor.name; }
        return [r.status, r.statusText, r.ok, r.url, r.redirected, r.type, await r.text(), noBody.body, error, await streamed.text(), [...text.headers], await text.text()];
      `),
    ).toEqual([404, 'Not Found', false, 'https://x/', true, 'default', 'x', null, 'TypeError', 'ok', [], 'inline']);
  });
});
