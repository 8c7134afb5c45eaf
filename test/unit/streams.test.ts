// WHATWG Streams inside a real isolate: the polyfill's classes as globals, byte streams, the
// encoding streams, workerd's IdentityTransformStream/FixedLengthStream, and the whole fetch
// family working from a V8 snapshot (which is how production isolates are born).
import ivm from 'isolated-vm';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

const STREAM_CLASSES = [
  'ReadableStream',
  'ReadableStreamDefaultReader',
  'ReadableStreamBYOBReader',
  'ReadableStreamBYOBRequest',
  'ReadableStreamDefaultController',
  'ReadableByteStreamController',
  'WritableStream',
  'WritableStreamDefaultWriter',
  'WritableStreamDefaultController',
  'TransformStream',
  'TransformStreamDefaultController',
  'ByteLengthQueuingStrategy',
  'CountQueuingStrategy',
  'TextEncoderStream',
  'TextDecoderStream',
  'IdentityTransformStream',
  'FixedLengthStream',
];

describe('streams', () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await createGuest();
  });
  afterAll(() => guest.dispose());

  it('defines every stream class as a global, with its own name', async () => {
    expect(await guest.run(`return ${JSON.stringify(STREAM_CLASSES)}.map((n) => typeof globalThis[n] === 'function' && globalThis[n].name === n)`)).toEqual(
      STREAM_CLASSES.map(() => true),
    );
  });

  it('has browser toStringTags', async () => {
    expect(
      await guest.run(`
        const rs = new ReadableStream();
        return [rs, rs.getReader(), new WritableStream(), new TransformStream(), new TextEncoderStream(), new TextDecoderStream(), new IdentityTransformStream(), new CountQueuingStrategy({ highWaterMark: 1 })]
          .map((o) => Object.prototype.toString.call(o));
      `),
    ).toEqual([
      '[object ReadableStream]',
      '[object ReadableStreamDefaultReader]',
      '[object WritableStream]',
      '[object TransformStream]',
      '[object TextEncoderStream]',
      '[object TextDecoderStream]',
      '[object IdentityTransformStream]',
      '[object CountQueuingStrategy]',
    ]);
  });

  describe('ReadableStream', () => {
    it('from() takes arrays, sync and async iterables', async () => {
      expect(
        await guest.run(`
          const collect = async (s) => { const out = []; for await (const c of s) out.push(c); return out; };
          async function* gen() { yield 'a'; yield 'b'; }
          return [await collect(ReadableStream.from([1, 2])), await collect(ReadableStream.from(new Set(['x']))), await collect(ReadableStream.from(gen()))];
        `),
      ).toEqual([[1, 2], ['x'], ['a', 'b']]);
    });

    it('pipes through transforms and into writables, with backpressure-respecting writers', async () => {
      expect(
        await guest.run(`
          const upper = new TransformStream({ transform(chunk, c) { c.enqueue(chunk.toUpperCase()); }, flush(c) { c.enqueue('!'); } });
          const sink = [];
          await ReadableStream.from(['a', 'b']).pipeThrough(upper).pipeTo(new WritableStream({ write(chunk) { sink.push(chunk); } }));
          const written = [];
          const ws = new WritableStream({ write(c) { written.push(c); } }, new CountQueuingStrategy({ highWaterMark: 2 }));
          const writer = ws.getWriter();
          const desired = writer.desiredSize;
          await writer.write(1);
          await writer.close();
          return [sink, written, desired];
        `),
      ).toEqual([['A', 'B', '!'], [1], 2]);
    });

    it('tee() gives two independent branches', async () => {
      expect(
        await guest.run(`
          const [a, b] = ReadableStream.from(['x', 'y']).tee();
          const read = async (s) => { const out = []; for await (const c of s) out.push(c); return out.join(''); };
          return [await read(a), await read(b)];
        `),
      ).toEqual(['xy', 'xy']);
    });

    it('supports byte streams with BYOB readers', async () => {
      expect(
        await guest.run(`
          const stream = new ReadableStream({
            type: 'bytes',
            pull(controller) {
              const view = controller.byobRequest.view;
              view[0] = 7; view[1] = 8;
              controller.byobRequest.respond(2);
              controller.close();
            },
          });
          const reader = stream.getReader({ mode: 'byob' });
          const { value } = await reader.read(new Uint8Array(4));
          const end = await reader.read(new Uint8Array(4));
          return [Object.prototype.toString.call(reader), [...value], end.done];
        `),
      ).toEqual(['[object ReadableStreamBYOBReader]', [7, 8], true]);
    });

    it('hands byte-stream chunks on without going through structuredClone (no per-chunk copy)', async () => {
      expect(
        await guest.run(`
          const original = globalThis.structuredClone;
          let calls = 0;
          globalThis.structuredClone = (v) => { calls++; return original(v); };
          try {
            const chunk = new Uint8Array([1, 2, 3]);
            const stream = new ReadableStream({ type: 'bytes', start(c) { c.enqueue(chunk); c.close(); } });
            const { value } = await stream.getReader().read();
            return [calls, [...value]];
          } finally {
            globalThis.structuredClone = original;
          }
        `),
      ).toEqual([0, [1, 2, 3]]);
    });

    it('propagates errors and cancellation', async () => {
      expect(
        await guest.run(`
          const failing = new ReadableStream({ pull(c) { c.error(new RangeError('boom')); } });
          const error = await failing.getReader().read().then(() => 'ok', (e) => e.constructor.name + ':' + e.message);
          let cancelled = null;
          const cancellable = new ReadableStream({ cancel(reason) { cancelled = reason; } });
          await cancellable.cancel('why');
          return [error, cancelled];
        `),
      ).toEqual(['RangeError:boom', 'why']);
    });

    it('queuing strategies measure chunks', async () => {
      expect(
        await guest.run(`
          const bytes = new ByteLengthQueuingStrategy({ highWaterMark: 16 });
          const count = new CountQueuingStrategy({ highWaterMark: 3 });
          return [bytes.highWaterMark, bytes.size(new Uint8Array(5)), count.highWaterMark, count.size('anything')];
        `),
      ).toEqual([16, 5, 3, 1]);
    });
  });

  describe('TextEncoderStream', () => {
    it('encodes UTF-8, joining surrogate pairs split across chunks', async () => {
      expect(
        await guest.run(`
          const s = ReadableStream.from(['h\\uD83D', '\\uDE00i', '\\uD800']).pipeThrough(new TextEncoderStream());
          return [...await new Response(s).bytes()];
        `),
      ).toEqual([104, 0xf0, 0x9f, 0x98, 0x80, 105, 0xef, 0xbf, 0xbd]);
    });

    it('emits Uint8Array chunks and reports utf-8', async () => {
      expect(
        await guest.run(`
          const enc = new TextEncoderStream();
          const writer = enc.writable.getWriter();
          writer.write('é');
          writer.close();
          const { value } = await enc.readable.getReader().read();
          return [enc.encoding, Object.prototype.toString.call(value), [...value]];
        `),
      ).toEqual(['utf-8', '[object Uint8Array]', [0xc3, 0xa9]]);
    });
  });

  describe('TextDecoderStream', () => {
    it('decodes sequences split across chunks and strips the BOM', async () => {
      expect(
        await guest.run(`
          const s = ReadableStream.from([new Uint8Array([0xef, 0xbb, 0xbf, 0xe2, 0x82]), new Uint8Array([0xac, 0x41])]).pipeThrough(new TextDecoderStream());
          let text = '';
          for await (const chunk of s) text += chunk;
          return text;
        `),
      ).toBe('€A');
    });

    it('flushes an incomplete sequence as U+FFFD, or errors when fatal', async () => {
      expect(
        await guest.run(`
          const decode = async (options) => {
            const s = ReadableStream.from([new Uint8Array([0x41, 0xe2, 0x82])]).pipeThrough(new TextDecoderStream('utf-8', options));
            let text = '';
            try { for await (const chunk of s) text += chunk; } catch (e) { return e.constructor.name; }
            return text;
          };
          return [await decode(), await decode({ fatal: true })];
        `),
      ).toEqual(['A\uFFFD', 'TypeError']);
    });

    it('takes an encoding label and options, and rejects unknown labels', async () => {
      expect(
        await guest.run(`
          const d = new TextDecoderStream('UTF-16LE', { fatal: true, ignoreBOM: true });
          let error = null;
          try { new TextDecoderStream('no-such-encoding'); } catch (e) { error = e.constructor.name; }
          const s = ReadableStream.from([new Uint8Array([0x68, 0x00, 0x69, 0x00])]).pipeThrough(new TextDecoderStream('utf-16le'));
          let text = '';
          for await (const chunk of s) text += chunk;
          return [d.encoding, d.fatal, d.ignoreBOM, error, text];
        `),
      ).toEqual(['utf-16le', true, true, 'RangeError', 'hi']);
    });
  });

  describe('workerd byte transforms', () => {
    it('IdentityTransformStream passes bytes and refuses other chunks', async () => {
      expect(
        await guest.run(`
          const { readable, writable } = new IdentityTransformStream();
          const writer = writable.getWriter();
          writer.write(new Uint8Array([104, 105]));
          writer.close();
          const text = await new Response(readable).text();
          const other = new IdentityTransformStream();
          const rejected = other.writable.getWriter().write('str').then(() => 'ok', (e) => e.constructor.name);
          other.readable.getReader().read().catch(() => {});
          return [text, await rejected, new IdentityTransformStream() instanceof TransformStream];
        `),
      ).toEqual(['hi', 'TypeError', true]);
    });

    it('FixedLengthStream errors when the byte count is not exactly the declared length', async () => {
      expect(
        await guest.run(`
          const run = async (length, chunks) => {
            const { readable, writable } = new FixedLengthStream(length);
            const done = new Response(readable).arrayBuffer().then((b) => b.byteLength, (e) => e.constructor.name);
            const writer = writable.getWriter();
            try { for (const c of chunks) await writer.write(new Uint8Array(c)); await writer.close(); } catch {}
            return done;
          };
          let bad = null;
          try { new FixedLengthStream(-1); } catch (e) { bad = e.constructor.name; }
          return [await run(3, [2, 1]), await run(3, [2]), await run(3, [4]), bad];
        `),
      ).toEqual([3, 'TypeError', 'TypeError', 'TypeError']);
    });
  });
});

describe('the fetch family from a V8 snapshot', () => {
  it('works in an isolate made from a snapshot of the bundle', async () => {
    // Functions compiled after deserialization must see the variables of snapshot-time scopes,
    // one-letter names included (the minified polyfill is full of them; V8 11.3 lost them).
    const bundle = readFileSync(fileURLToPath(new URL('../../dist/sandbox.js', import.meta.url)), 'utf8');
    const snapshot = ivm.Isolate.createSnapshot([{ code: bundle, filename: 'cinder:sandbox.js' }]);
    const isolate = new ivm.Isolate({ memoryLimit: 128, snapshot });
    try {
      const context = isolate.createContextSync();
      const result = await context.eval(
        `(async () => {
          const url = new URL('http://ÉXAMPLE.com/a?b=c d');
          const headers = new Headers({ 'X-A': '1' });
          headers.append('x-a', '2');
          const fd = new FormData();
          fd.append('f', new File(['x'], 'x.txt'));
          const parsed = await new Response(fd).formData();
          const encoded = await new Response(ReadableStream.from(['é']).pipeThrough(new TextEncoderStream())).text();
          const [a, b] = new Response('tee').body.tee();
          return JSON.stringify([url.href, url.searchParams.get('b'), [...headers], parsed.get('f').name, encoded, await new Response(a).text(), await new Response(b).text(), await new Blob(['blob']).text()]);
        })()`,
        { promise: true, copy: true } as ivm.ContextEvalOptions,
      );
      expect(JSON.parse(result as string)).toEqual(['http://xn--xample-9ua.com/a?b=c%20d', 'c d', [['x-a', '1, 2']], 'x.txt', 'é', 'tee', 'tee', 'blob']);
    } finally {
      isolate.dispose();
    }
  });
});
