// The KV conformance suite: the Workers KV API, exercised from inside a real worker over real
// HTTP, against each backend (memory, SQLite, a real redis-server). Every backend must behave
// the same; a case that needs a backend-specific branch is a bug in that backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KVService } from '../../bindings/kv/index.js';
import { allFixtures, startKVHarness, TestClock, uniqueNamespace, type KVHarness } from './fixtures.js';

const MiB = 1024 * 1024;
const PUT_TYPES = 'KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.';

// Reads a ReadableStream of bytes to a plain array, inside the guest.
const READ_STREAM = `async function readAll(stream) {
  const reader = stream.getReader();
  const out = [];
  for (;;) { const { done, value } = await reader.read(); if (done) return out; out.push(...value); }
}`;

for (const fixture of allFixtures()) {
  describe.skipIf(!fixture.available)(`KV conformance: ${fixture.kind}`, () => {
    let kv: KVHarness;
    beforeAll(async () => {
      await fixture.setup();
      kv = await startKVHarness(fixture.open());
    });
    afterAll(async () => {
      await kv?.close();
      await fixture.teardown();
    });

    describe('get and put, every type', () => {
      it('reads text with every spelling of the type', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run(ns, `
          await KV.put('k', 'héllo ✓ 😀');
          return [await KV.get('k'), await KV.get('k', 'text'), await KV.get('k', { type: 'text' }), await KV.get('k', { cacheTtl: 60 }), await KV.get('k', {})];
        `);
        expect(out).toEqual(Array(5).fill('héllo ✓ 😀'));
      });

      it('reads json, and a value that is not JSON throws SyntaxError', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run(ns, `
          await KV.put('j', JSON.stringify({ a: [1, 2], b: 'x', c: null }));
          await KV.put('t', 'not json');
          let error;
          try { await KV.get('t', 'json'); } catch (e) { error = e.name; }
          return [await KV.get('j', 'json'), await KV.get('j', { type: 'json' }), error];
        `);
        expect(out).toEqual([{ a: [1, 2], b: 'x', c: null }, { a: [1, 2], b: 'x', c: null }, 'SyntaxError']);
      });

      it('reads arrayBuffer as the stored UTF-8 bytes', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run<[boolean, number[]]>(ns, `
          await KV.put('k', 'é✓');
          const buffer = await KV.get('k', 'arrayBuffer');
          return [buffer instanceof ArrayBuffer, Array.from(new Uint8Array(buffer))];
        `);
        expect(out).toEqual([true, [...Buffer.from('é✓')]]);
      });

      it('reads stream as a ReadableStream of the bytes', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run(ns, `${READ_STREAM}
          await KV.put('k', 'streamed ✓');
          const stream = await KV.get('k', 'stream');
          const { value, metadata } = await KV.getWithMetadata('k', { type: 'stream' });
          return [stream instanceof ReadableStream, await readAll(stream), await readAll(value), metadata];
        `);
        expect(out).toEqual([true, [...Buffer.from('streamed ✓')], [...Buffer.from('streamed ✓')], null]);
      });

      it('gives null for a missing key, whatever the type', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run(ns, `
          return [await KV.get('nope'), await KV.get('nope', 'json'), await KV.get('nope', 'arrayBuffer'), await KV.get('nope', 'stream'), await KV.getWithMetadata('nope')];
        `);
        expect(out).toEqual([null, null, null, null, { value: null, metadata: null, cacheStatus: null }]);
      });

      it('puts ArrayBuffers, every kind of ArrayBufferView, and streams, byte for byte', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run<Record<string, number[]>>(ns, `
          const bytes = [0, 255, 128, 1, 0xc3, 0x28]; // not valid UTF-8: must survive as bytes
          const backing = new Uint8Array([9, 9, ...bytes, 9]);
          await KV.put('arraybuffer', new Uint8Array(bytes).buffer);
          await KV.put('subarray', backing.subarray(2, 2 + bytes.length));
          await KV.put('dataview', new DataView(backing.buffer, 2, bytes.length));
          await KV.put('int16', new Int16Array([1, -1]));
          await KV.put('stream', new ReadableStream({ start(c) { c.enqueue(new Uint8Array([1, 2])); c.enqueue(new Uint8Array([3])); c.close(); } }));
          await KV.put('encoded', new TextEncoder().encode('tëxt'));
          const out = {};
          for (const key of ['arraybuffer', 'subarray', 'dataview', 'int16', 'stream', 'encoded']) out[key] = Array.from(new Uint8Array(await KV.get(key, 'arrayBuffer')));
          return out;
        `);
        const bytes = [0, 255, 128, 1, 0xc3, 0x28];
        expect(out).toEqual({ arraybuffer: bytes, subarray: bytes, dataview: bytes, int16: [1, 0, 255, 255], stream: [1, 2, 3], encoded: [...Buffer.from('tëxt')] });
      });

      it('stores empty values as values, not as missing keys', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run(ns, `
          await KV.put('s', '');
          await KV.put('b', new ArrayBuffer(0));
          await KV.put('r', new ReadableStream({ start(c) { c.close(); } }));
          return [await KV.get('s'), (await KV.get('b', 'arrayBuffer')).byteLength, await KV.get('r'), (await KV.list()).keys.length];
        `);
        expect(out).toEqual(['', 0, '', 3]);
      });

      it('overwrites on put and removes on delete; deleting a missing key is fine', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run(ns, `
          await KV.put('k', 'one');
          await KV.put('k', 'two');
          const before = await KV.get('k');
          const deleted = await KV.delete('k');
          await KV.delete('never-there');
          return [before, deleted === undefined, await KV.get('k')];
        `);
        expect(out).toEqual(['two', true, null]);
      });

      it('refuses values that are not strings, buffers, views or streams (primitives become text, as in workerd)', async () => {
        const ns = uniqueNamespace();
        for (const value of ['{}', '[1]', 'null', 'undefined', 'new Map()']) {
          const error = await kv.fails(ns, `await KV.put('k', ${value});`);
          expect(error).toMatchObject({ name: 'TypeError', message: PUT_TYPES, isTypeError: true });
        }
        expect(await kv.run(ns, `await KV.put('n', 42); await KV.put('t', true); return [await KV.get('n'), await KV.get('t')];`)).toEqual(['42', 'true']);
        const chunkError = await kv.fails(ns, `await KV.put('k', new ReadableStream({ start(c) { c.enqueue('text chunk'); c.close(); } }));`);
        expect(chunkError).toMatchObject({ name: 'TypeError', message: 'This ReadableStream did not return bytes.' });
      });

      it('does not block the isolate while a KV call is in flight', async () => {
        const ns = uniqueNamespace();
        // Many concurrent operations from one invocation all complete, in any order.
        const out = await kv.run(ns, `
          await Promise.all(Array.from({ length: 50 }, (_, i) => KV.put('c' + i, String(i))));
          const values = await Promise.all(Array.from({ length: 50 }, (_, i) => KV.get('c' + i)));
          return values.join(',');
        `);
        expect(out).toBe(Array.from({ length: 50 }, (_, i) => i).join(','));
      });
    });

    describe('metadata', () => {
      it('is stored beside the value and returned by getWithMetadata, for every type', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run(ns, `
          await KV.put('k', 'v', { metadata: { owner: 'ana', tags: ['a', 'b'], n: 1.5 } });
          const text = await KV.getWithMetadata('k');
          const json = await KV.getWithMetadata('k', 'json').catch((e) => e.name);
          const bytes = await KV.getWithMetadata('k', { type: 'arrayBuffer' });
          return [text.value, text.metadata, json, Array.from(new Uint8Array(bytes.value)), bytes.metadata, typeof text.cacheStatus];
        `);
        expect(out).toEqual(['v', { owner: 'ana', tags: ['a', 'b'], n: 1.5 }, 'SyntaxError', [118], { owner: 'ana', tags: ['a', 'b'], n: 1.5 }, 'string']);
      });

      it('is replaced (or cleared) by the next put, and shows in list', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run(ns, `
          await KV.put('a', '1', { metadata: { v: 1 } });
          await KV.put('b', '2', { metadata: 'just a string' });
          await KV.put('c', '3', { metadata: { v: 1 } });
          await KV.put('c', '3');
          await KV.put('d', '4', { metadata: null });
          return [(await KV.list()).keys, (await KV.getWithMetadata('c')).metadata];
        `);
        expect(out).toEqual([[{ name: 'a', metadata: { v: 1 } }, { name: 'b', metadata: 'just a string' }, { name: 'c' }, { name: 'd' }], null]);
      });

      it('accepts 1024 bytes of serialized metadata and refuses 1025', async () => {
        const ns = uniqueNamespace();
        // JSON.stringify('x'.repeat(n)) is n + 2 bytes.
        expect(await kv.run(ns, `await KV.put('k', 'v', { metadata: 'x'.repeat(1022) }); return (await KV.getWithMetadata('k')).metadata.length;`)).toBe(1022);
        const error = await kv.fails(ns, `await KV.put('k', 'v', { metadata: 'x'.repeat(1023) });`);
        expect(error).toMatchObject({ name: 'Error', message: 'KV PUT failed: 413 Metadata length of 1025 exceeds limit of 1024.', isError: true });
        const unicode = await kv.fails(ns, `await KV.put('k', 'v', { metadata: { s: 'é'.repeat(600) } });`);
        expect(unicode.message).toBe('KV PUT failed: 413 Metadata length of 1208 exceeds limit of 1024.');
      });
    });

    describe('expiration and TTL', () => {
      it('records expirationTtl and expiration as seconds since the epoch', async () => {
        const ns = uniqueNamespace();
        const now = kv.clock.seconds();
        const out = await kv.run<{ keys: { name: string; expiration: number }[] }>(ns, `
          await KV.put('ttl', 'a', { expirationTtl: 120 });
          await KV.put('abs', 'b', { expiration: ${now + 3600} });
          await KV.put('forever', 'c');
          return [await KV.get('ttl'), await KV.get('abs'), await KV.list()];
        `);
        const [ttl, abs, list] = out as unknown as [string, string, { keys: { name: string; expiration?: number }[] }];
        expect([ttl, abs]).toEqual(['a', 'b']);
        const byName = Object.fromEntries(list.keys.map((k) => [k.name, k]));
        expect(byName.abs).toEqual({ name: 'abs', expiration: now + 3600 });
        expect(byName.ttl.expiration).toBeGreaterThanOrEqual(now + 120);
        expect(byName.ttl.expiration).toBeLessThanOrEqual(now + 121);
        expect(byName.forever).toEqual({ name: 'forever' });
      });

      it('never returns an expired key, from any read, and the sweeper deletes it', async () => {
        const ns = uniqueNamespace();
        await kv.run(ns, `
          await KV.put('short', 'gone soon', { expirationTtl: 60, metadata: { m: 1 } });
          await KV.put('long', 'stays', { expirationTtl: 600 });
          await KV.put('unread', 'never read again', { expirationTtl: 60 });
          if (await KV.get('short') !== 'gone soon') throw new Error('not readable before expiry');
        `);
        kv.clock.advance(61_000);
        const out = await kv.run(ns, `
          return [await KV.get('short'), await KV.getWithMetadata('short'), (await KV.list()).keys.map((k) => k.name), [...(await KV.get(['short', 'long']))], await KV.get('short', 'arrayBuffer')];
        `);
        expect(out).toEqual([null, { value: null, metadata: null, cacheStatus: null }, ['long'], [['short', null], ['long', 'stays']], null]);
        // Reads may drop what they find expired; 'unread' is left for the sweeper alone.
        expect(await kv.service.sweep()).toBeGreaterThanOrEqual(1);
        // Physically gone: even asked "as of the epoch", storage no longer has it.
        const raw = await kv.service.backend.list(ns, { prefix: '', after: null, limit: 10, now: 0 });
        expect(raw.keys.map((k) => k.name)).toEqual(['long']);
      });

      it('expires for real with a lowered minimum TTL (no fake clock)', async () => {
        const ns = uniqueNamespace();
        const service = new KVService({ backend: fixture.open(), minExpirationTtl: 1, sweepIntervalMs: 0, cache: false });
        try {
          // Expirations are whole seconds from the put's second (as in Workers), so a TTL of 1 can
          // end a millisecond after the put; 2 leaves at least a second to read it back first.
          await service.put(ns, 'k', 'v', { expirationTtl: 2 });
          await service.put(ns, 'keep', 'v');
          expect((await service.get(ns, 'k'))?.value.toString()).toBe('v');
          const deadline = Date.now() + 4_000;
          while ((await service.get(ns, 'k')) !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
          expect(await service.get(ns, 'k')).toBeNull();
          expect((await service.list(ns)).keys.map((k) => k.name)).toEqual(['keep']);
        } finally {
          await service.close();
        }
      });

      it('refuses TTLs and expirations Workers refuses', async () => {
        const ns = uniqueNamespace();
        const now = kv.clock.seconds();
        const cases: [string, string][] = [
          [`{ expirationTtl: 59 }`, 'KV PUT failed: 400 Invalid expiration_ttl of 59. Expiration TTL must be at least 60.'],
          [`{ expirationTtl: 0 }`, 'KV PUT failed: 400 Invalid expiration_ttl of 0. Please specify integer greater than 0.'],
          [`{ expirationTtl: -5 }`, 'KV PUT failed: 400 Invalid expiration_ttl of -5. Please specify integer greater than 0.'],
          [`{ expiration: ${now - 10} }`, `KV PUT failed: 400 Invalid expiration of ${now - 10}. Please specify integer greater than the current number of seconds since the UNIX epoch.`],
          [`{ expiration: ${now + 30} }`, `KV PUT failed: 400 Invalid expiration of ${now + 30}. Expiration times must be at least 60 seconds in the future.`],
        ];
        for (const [options, message] of cases) {
          expect(await kv.fails(ns, `await KV.put('k', 'v', ${options});`)).toMatchObject({ name: 'Error', message });
        }
        expect(await kv.run(ns, `return (await KV.list()).keys.length;`)).toBe(0);
      });
    });

    describe('list', () => {
      it('lists in UTF-8 byte order, with only the fields a key has', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run<{ keys: Record<string, unknown>[]; list_complete: boolean; cacheStatus: null }>(ns, `
          for (const key of ['😀', 'b', '\\uffff', 'a/b', 'é', 'ab', 'B', 'a']) await KV.put(key, 'v');
          return await KV.list();
        `);
        expect(out.keys.map((k) => k.name)).toEqual(['B', 'a', 'a/b', 'ab', 'b', 'é', '\uffff', '😀']);
        expect(out.keys.every((k) => Object.keys(k).join() === 'name')).toBe(true);
        expect(out).toMatchObject({ list_complete: true, cacheStatus: null });
        expect('cursor' in out).toBe(false);
      });

      it('pages over more than 1000 keys with prefix and cursor', async () => {
        const ns = uniqueNamespace();
        const items = Array.from({ length: 2100 }, (_, i) => `item:${String(i).padStart(5, '0')}`);
        const others = Array.from({ length: 400 }, (_, i) => `other:${i}`);
        // Seeded through the service (a worker may make only 1,000 KV calls per invocation).
        for (let i = 0; i < items.length + others.length; i += 250) {
          await Promise.all([...items, ...others].slice(i, i + 250).map((key) => kv.service.put(ns, key, 'v')));
        }
        const walk = (options: string) => `
          const names = []; const sizes = []; let cursor; let page;
          do {
            page = await KV.list({ ${options} cursor });
            names.push(...page.keys.map((k) => k.name)); sizes.push(page.keys.length);
            if (!page.list_complete && typeof page.cursor !== 'string') throw new Error('incomplete page without a cursor');
            cursor = page.cursor;
          } while (!page.list_complete);
          return { names, sizes };`;
        const byPrefix = await kv.run<{ names: string[]; sizes: number[] }>(ns, walk(`prefix: 'item:',`));
        expect(byPrefix.sizes).toEqual([1000, 1000, 100]);
        expect(byPrefix.names).toEqual(items);
        const small = await kv.run<{ names: string[]; sizes: number[] }>(ns, walk(`prefix: 'item:001', limit: 30,`));
        expect(small.sizes).toEqual([30, 30, 30, 10]);
        expect(small.names).toEqual(items.filter((k) => k.startsWith('item:001')));
        const everything = await kv.run<{ names: string[]; sizes: number[] }>(ns, walk(''));
        expect(everything.sizes).toEqual([1000, 1000, 500]);
        expect(everything.names).toEqual([...items, ...others].sort());
      });

      it('treats limit <= 0 as the default, refuses more than 1000 and bad cursors', async () => {
        const ns = uniqueNamespace();
        await kv.run(ns, `await KV.put('a', '1'); await KV.put('b', '2');`);
        expect(await kv.run(ns, `return (await KV.list({ limit: 0 })).keys.length;`)).toBe(2);
        expect(await kv.run(ns, `const p = await KV.list({ limit: 1 }); const q = await KV.list({ limit: 1, cursor: p.cursor }); return [p.keys[0].name, p.list_complete, q.keys[0].name, q.list_complete];`)).toEqual(['a', false, 'b', true]);
        expect(await kv.fails(ns, `await KV.list({ limit: 1001 });`)).toMatchObject({ message: 'KV GET failed: 400 Invalid key_count_limit of 1001. Please specify an integer less than 1000.' });
        expect(await kv.fails(ns, `await KV.list({ cursor: '!!not a cursor' });`)).toMatchObject({ message: 'KV GET failed: 400 Invalid cursor' });
        expect(await kv.run(ns, `return await KV.list({ prefix: 'zzz' });`)).toEqual({ keys: [], list_complete: true, cacheStatus: null });
      });
    });

    describe('bulk get', () => {
      it('returns a Map of every key asked for, null for missing ones', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run(ns, `
          await KV.put('a', JSON.stringify({ n: 1 }), { metadata: { m: 'a' } });
          await KV.put('b', JSON.stringify([2]));
          const text = await KV.get(['a', 'b', 'missing']);
          const json = await KV.get(['a', 'b', 'missing'], 'json');
          const withMeta = await KV.getWithMetadata(['a', 'b', 'missing'], { type: 'json' });
          return [text instanceof Map, [...text], [...json], [...withMeta]];
        `);
        expect(out).toEqual([
          true,
          [['a', '{"n":1}'], ['b', '[2]'], ['missing', null]],
          [['a', { n: 1 }], ['b', [2]], ['missing', null]],
          [['a', { value: { n: 1 }, metadata: { m: 'a' } }], ['b', { value: [2], metadata: null }], ['missing', null]],
        ]);
      });

      it('limits and errors as on Workers', async () => {
        const ns = uniqueNamespace();
        await kv.run(ns, `await KV.put('t', 'not json');`);
        expect(await kv.fails(ns, `await KV.get(Array.from({ length: 101 }, (_, i) => 'k' + i));`)).toMatchObject({ message: 'KV GET_BULK failed: 400 You can request a maximum of 100 keys' });
        expect(await kv.fails(ns, `await KV.get([]);`)).toMatchObject({ message: 'KV GET_BULK failed: 400 You must request a minimum of 1 key' });
        expect(await kv.fails(ns, `await KV.get(['t'], 'arrayBuffer');`)).toMatchObject({ message: 'KV GET_BULK failed: 400 "arrayBuffer" is not a valid type. Use "json" or "text"' });
        expect(await kv.fails(ns, `await KV.get(['t'], 'json');`)).toMatchObject({ message: 'KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value' });
        expect((await kv.run(ns, `return (await KV.get(Array.from({ length: 100 }, (_, i) => 'k' + i))).size;`))).toBe(100);
      });
    });

    describe('limits and their errors', () => {
      it('takes keys up to 512 UTF-8 bytes and refuses longer ones on every method', async () => {
        const ns = uniqueNamespace();
        expect(await kv.run(ns, `const k = 'k'.repeat(512); await KV.put(k, 'v'); return await KV.get(k);`)).toBe('v');
        const long = `'é'.repeat(257)`; // 514 bytes, 257 UTF-16 units
        const message = (method: string) => `KV ${method} failed: 414 UTF-8 encoded length of 514 exceeds key length limit of 512.`;
        expect(await kv.fails(ns, `await KV.put(${long}, 'v');`)).toMatchObject({ name: 'Error', message: message('PUT') });
        expect(await kv.fails(ns, `await KV.get(${long});`)).toMatchObject({ message: message('GET') });
        expect(await kv.fails(ns, `await KV.delete(${long});`)).toMatchObject({ message: message('DELETE') });
        expect(await kv.fails(ns, `await KV.list({ prefix: ${long} });`)).toMatchObject({ message: message('GET') });
      });

      it('refuses the key names workerd refuses, as TypeErrors', async () => {
        const ns = uniqueNamespace();
        expect(await kv.fails(ns, `await KV.get('');`)).toMatchObject({ name: 'TypeError', message: 'Key name cannot be empty.' });
        expect(await kv.fails(ns, `await KV.put('.', 'v');`)).toMatchObject({ name: 'TypeError', message: '"." is not allowed as a key name.' });
        expect(await kv.fails(ns, `await KV.delete('..');`)).toMatchObject({ name: 'TypeError', message: '".." is not allowed as a key name.' });
        expect(await kv.fails(ns, `await KV.get('k', 'blob');`)).toMatchObject({ name: 'TypeError', message: 'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".' });
      });

      it('takes a 25 MiB value and refuses one byte more, as text, bytes or stream', async () => {
        const ns = uniqueNamespace();
        expect(await kv.run(ns, `await KV.put('big', 'x'.repeat(${25 * MiB})); return (await KV.get('big', 'arrayBuffer')).byteLength;`)).toBe(25 * MiB);
        const message = `KV PUT failed: 413 Value length of ${25 * MiB + 1} exceeds limit of ${25 * MiB}.`;
        expect(await kv.fails(ns, `await KV.put('k', 'x'.repeat(${25 * MiB + 1}));`)).toMatchObject({ name: 'Error', message });
        expect(await kv.fails(ns, `await KV.put('k', new Uint8Array(${25 * MiB + 1}));`)).toMatchObject({ message });
        const streamed = await kv.fails(ns, `await KV.put('k', new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(${MiB})); } }));`);
        expect(streamed.message).toMatch(/^KV PUT failed: 413 Value length of \d+ exceeds limit of 26214400\.$/);
        expect(await kv.run(ns, `return await KV.get('k');`)).toBeNull();
      });

      it('requires cacheTtl of at least 30 seconds', async () => {
        const ns = uniqueNamespace();
        expect(await kv.fails(ns, `await KV.get('k', { cacheTtl: 29 });`)).toMatchObject({ message: 'KV GET failed: 400 Invalid cache_ttl of 29. Cache TTL must be at least 30.' });
        expect(await kv.run(ns, `return await KV.get('k', { cacheTtl: 30 });`)).toBeNull();
      });
    });

    describe('read cache', () => {
      it('reads your own writes and deletes at once', async () => {
        const ns = uniqueNamespace();
        const out = await kv.run(ns, `
          await KV.put('k', 'one');
          const a = await KV.getWithMetadata('k');
          const b = await KV.getWithMetadata('k');
          await KV.put('k', 'two');
          const c = await KV.getWithMetadata('k', { cacheTtl: 3600 });
          await KV.delete('k');
          const d = await KV.get('k');
          await KV.put('k', 'three');
          return [a.value, a.cacheStatus, b.value, b.cacheStatus, c.value, c.cacheStatus, d, await KV.get('k')];
        `);
        expect(out).toEqual(['one', 'MISS', 'one', 'HIT', 'two', 'MISS', null, 'three']);
      });

      it("sees another node's write once its cached read is older than cacheTtl", async () => {
        const ns = uniqueNamespace();
        const other = new KVService({ backend: fixture.open(), clock: kv.clock.now, sweepIntervalMs: 0 });
        try {
          await other.put(ns, 'k', 'v1');
          const read = `const r = await KV.getWithMetadata('k', OPTIONS); return [r.value, r.cacheStatus];`;
          expect(await kv.run(ns, read.replace('OPTIONS', '{}'))).toEqual(['v1', 'MISS']);
          await other.put(ns, 'k', 'v2');
          // Within the default 60 s: this node still serves what it read.
          expect(await kv.run(ns, read.replace('OPTIONS', '{}'))).toEqual(['v1', 'HIT']);
          kv.clock.advance(31_000);
          expect(await kv.run(ns, read.replace('OPTIONS', '{}'))).toEqual(['v1', 'HIT']);
          // A reader asking for cacheTtl 30 does not accept a 31 s old read.
          expect(await kv.run(ns, read.replace('OPTIONS', '{ cacheTtl: 30 }'))).toEqual(['v2', 'MISS']);
          await other.put(ns, 'k', 'v3');
          kv.clock.advance(61_000);
          expect(await kv.run(ns, read.replace('OPTIONS', '{}'))).toEqual(['v3', 'MISS']);
        } finally {
          await other.close();
        }
      });

      it('caches misses too, and a local put clears them', async () => {
        const ns = uniqueNamespace();
        const other = new KVService({ backend: fixture.open(), clock: kv.clock.now, sweepIntervalMs: 0 });
        try {
          expect(await kv.run(ns, `return await KV.get('k');`)).toBeNull();
          await other.put(ns, 'k', 'remote');
          expect(await kv.run(ns, `return await KV.get('k');`)).toBeNull();
          kv.clock.advance(61_000);
          expect(await kv.run(ns, `return await KV.get('k');`)).toBe('remote');
          await other.delete(ns, 'k');
          expect(await kv.run(ns, `await KV.put('k', 'local'); return await KV.get('k');`)).toBe('local');
        } finally {
          await other.close();
        }
      });
    });

    // Memory is gone with its process: nothing to persist.
    if (fixture.persistent) describe('persistence', () => {
      it('keeps data across a runtime restart', async () => {
        const ns = uniqueNamespace();
        const first = await startKVHarness(fixture.open());
        await first.run(ns, `await KV.put('k', 'survives', { metadata: { m: 1 }, expirationTtl: 3600 }); await KV.put('bin', new Uint8Array([1, 2, 3]));`);
        await first.close();
        const second = await startKVHarness(fixture.open());
        try {
          const out = await second.run<[unknown, number[], string[]]>(ns, `
            const r = await KV.getWithMetadata('k');
            return [[r.value, r.metadata], Array.from(new Uint8Array(await KV.get('bin', 'arrayBuffer'))), (await KV.list()).keys.map((k) => k.name)];
          `);
          expect(out).toEqual([['survives', { m: 1 }], [1, 2, 3], ['bin', 'k']]);
        } finally {
          await second.close();
        }
      });
    });
  });
}
