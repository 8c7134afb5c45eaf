// Request and Response inside a real isolate: WHATWG Fetch §5.4–5.5 with workerd's shape (a Body
// base class, cf, fetcher, webSocket). Body reading itself is covered in body.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuest, type Guest } from '../helpers/guest.js';

describe('Request and Response', () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await createGuest();
  });
  afterAll(() => guest.dispose());

  describe('shape', () => {
    it('both extend a shared, non-global Body class, as in workerd', async () => {
      expect(
        await guest.run(`
          const Body = Object.getPrototypeOf(Request);
          let direct = null;
          try { new Body(); } catch (e) { direct = e.constructor.name; }
          return [
            Body.name,
            Object.getPrototypeOf(Response) === Body,
            typeof globalThis.Body,
            direct,
            Object.getOwnPropertyNames(Body.prototype).sort(),
            new Request('https://a/') instanceof Body,
          ];
        `),
      ).toEqual(['Body', true, 'undefined', 'TypeError', ['arrayBuffer', 'blob', 'body', 'bodyUsed', 'bytes', 'constructor', 'formData', 'json', 'text'], true]);
    });

    it('exposes the members workerd has, with browser toStringTags and class names', async () => {
      expect(
        await guest.run(`
          const own = (c) => Object.getOwnPropertyNames(c.prototype).filter((n) => n !== 'constructor').sort();
          return [
            own(Request),
            own(Response),
            Object.getOwnPropertyNames(Response).filter((n) => !['length', 'name', 'prototype'].includes(n)).sort(),
            Object.prototype.toString.call(new Request('https://a/')),
            Object.prototype.toString.call(new Response()),
            Request.name,
            Response.name,
          ];
        `),
      ).toEqual([
        ['cache', 'cf', 'clone', 'fetcher', 'headers', 'integrity', 'keepalive', 'method', 'redirect', 'signal', 'url'],
        ['cf', 'clone', 'headers', 'ok', 'redirected', 'status', 'statusText', 'type', 'url', 'webSocket'],
        ['error', 'json', 'redirect'],
        '[object Request]',
        '[object Response]',
        'Request',
        'Response',
      ]);
    });
  });

  describe('new Request()', () => {
    it('has the spec defaults', async () => {
      expect(
        await guest.run(`
          const r = new Request('https://example.com');
          return [r.url, r.method, r.redirect, r.cache, r.integrity, r.keepalive, r.cf === undefined, r.fetcher, r.body, r.bodyUsed, [...r.headers], r.signal.aborted, r.signal === r.signal];
        `),
      ).toEqual(['https://example.com/', 'GET', 'follow', 'default', '', false, true, null, null, false, [], false, true]);
    });

    it('parses and serializes the URL (strings, URL objects, anything with toString)', async () => {
      expect(
        await guest.run(`
          return [
            new Request('HTTPS://EXAMPLE.com:443/a b?c d#frag').url,
            new Request(new URL('https://example.com/x')).url,
            new Request({ toString: () => 'https://example.com/y' }).url,
          ];
        `),
      ).toEqual(['https://example.com/a%20b?c%20d#frag', 'https://example.com/x', 'https://example.com/y']);
    });

    it('rejects relative URLs (no base at the edge) and URLs with credentials', async () => {
      expect(
        await guest.run(`
          return ['/path', 'nope', 'https://user:pass@example.com/', 'https://user@example.com/'].map((u) => {
            try { new Request(u); return 'ok'; } catch (e) { return e.constructor.name; }
          });
        `),
      ).toEqual(['TypeError', 'TypeError', 'TypeError', 'TypeError']);
    });

    it('normalizes only the six standard methods; CONNECT/TRACE/TRACK and non-tokens throw', async () => {
      expect(
        await guest.run(`
          const methods = ['get', 'post', 'Put', 'delete', 'head', 'options', 'patch', 'PATCH', 'propfind', 'connect', 'Trace', 'TRACK', 'a b', ''];
          return methods.map((method) => { try { return new Request('https://a/', { method }).method; } catch (e) { return e.constructor.name; } });
        `),
      ).toEqual(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'patch', 'PATCH', 'propfind', 'TypeError', 'TypeError', 'TypeError', 'TypeError', 'TypeError']);
    });

    it('refuses a body on GET and HEAD', async () => {
      expect(
        await guest.run(`
          const out = [];
          for (const init of [{ body: 'x' }, { method: 'HEAD', body: '' }, { method: 'GET', body: new Uint8Array(0) }]) {
            try { new Request('https://a/', init); out.push('ok'); } catch (e) { out.push(e.constructor.name); }
          }
          out.push(new Request('https://a/', { method: 'GET', body: null }).body);
          return out;
        `),
      ).toEqual(['TypeError', 'TypeError', 'TypeError', null]);
    });

    it('sets Content-Type from the body unless the headers already have one', async () => {
      expect(
        await guest.run(`
          const ct = (body, headers) => new Request('https://a/', { method: 'POST', body, headers }).headers.get('content-type');
          return [
            ct('text'),
            ct(new URLSearchParams('a=1')),
            ct(new Blob(['x'], { type: 'Image/PNG' })),
            ct(new Blob(['x'])),
            ct(new Uint8Array(1)),
            ct(new ArrayBuffer(1)),
            ct(new FormData()).startsWith('multipart/form-data; boundary='),
            ct(new ReadableStream()),
            ct('text', { 'Content-Type': 'application/custom' }),
          ];
        `),
      ).toEqual([
        'text/plain;charset=UTF-8',
        'application/x-www-form-urlencoded;charset=UTF-8',
        'image/png',
        null,
        null,
        null,
        true,
        null,
        'application/custom',
      ]);
    });

    it('validates the redirect and cache enums; keeps integrity, keepalive and cf', async () => {
      expect(
        await guest.run(`
          const r = new Request('https://a/', { redirect: 'manual', cache: 'no-store', integrity: 'sha256-x', keepalive: 1, cf: { cacheTtl: 5 } });
          const errors = [{ redirect: 'nope' }, { cache: 'nope' }].map((init) => { try { new Request('https://a/', init); return 'ok'; } catch (e) { return e.constructor.name; } });
          return [r.redirect, r.cache, r.integrity, r.keepalive, r.cf, errors];
        `),
      ).toEqual(['manual', 'no-store', 'sha256-x', true, { cacheTtl: 5 }, ['TypeError', 'TypeError']]);
    });

    it('takes an AbortSignal (or null), and rejects anything else as signal', async () => {
      expect(
        await guest.run(`
          const controller = new AbortController();
          const r = new Request('https://a/', { signal: controller.signal });
          controller.abort();
          const withNull = new Request('https://a/', { signal: null });
          let error = null;
          try { new Request('https://a/', { signal: {} }); } catch (e) { error = e.constructor.name; }
          return [r.signal.aborted, withNull.signal.aborted, error];
        `),
      ).toEqual([true, false, 'TypeError']);
    });

    it('rejects a non-object init (WebIDL dictionary)', async () => {
      expect(await guest.run(`try { new Request('https://a/', 5); return 'ok'; } catch (e) { return e.constructor.name; }`)).toBe('TypeError');
    });

    it('new Request(request) copies fields and takes over the body', async () => {
      expect(
        await guest.run(`
          const original = new Request('https://a/p', { method: 'POST', body: 'payload', headers: { 'x-a': '1' }, redirect: 'manual', cf: { k: 1 } });
          const copy = new Request(original);
          copy.headers.set('x-a', '2');
          return [copy.url, copy.method, copy.redirect, copy.cf, original.headers.get('x-a'), original.bodyUsed, copy.bodyUsed, await copy.text()];
        `),
      ).toEqual(['https://a/p', 'POST', 'manual', { k: 1 }, '1', true, false, 'payload']);
    });

    it('new Request(request, init) overrides fields; a new body leaves the input unused', async () => {
      expect(
        await guest.run(`
          const original = new Request('https://a/', { method: 'POST', body: 'old', headers: { 'x-a': '1' } });
          const copy = new Request(original, { method: 'PUT', body: 'new', headers: { 'x-b': '2' } });
          return [copy.method, [...copy.headers], await copy.text(), original.bodyUsed, await original.text()];
        `),
      ).toEqual(['PUT', [['content-type', 'text/plain;charset=UTF-8'], ['x-b', '2']], 'new', false, 'old']);
    });

    it('refuses to build from a used request, or to turn a request with a body into a GET', async () => {
      expect(
        await guest.run(`
          const used = new Request('https://a/', { method: 'POST', body: 'x' });
          await used.text();
          const out = [];
          try { new Request(used); out.push('ok'); } catch (e) { out.push(e.constructor.name); }
          try { new Request(new Request('https://a/', { method: 'POST', body: 'x' }), { method: 'GET' }); out.push('ok'); } catch (e) { out.push(e.constructor.name); }
          return out;
        `),
      ).toEqual(['TypeError', 'TypeError']);
    });

    it('clone() copies headers independently and tees the body', async () => {
      expect(
        await guest.run(`
          const r = new Request('https://a/', { method: 'POST', body: ReadableStream.from([new Uint8Array([104, 105])]), headers: { a: '1' } });
          const c = r.clone();
          c.headers.set('a', '2');
          const texts = [await r.text(), await c.text()];
          let error = null;
          try { r.clone(); } catch (e) { error = e.constructor.name; }
          return [texts, r.headers.get('a'), c.headers.get('a'), c.method, c.url, error];
        `),
      ).toEqual([['hi', 'hi'], '1', '2', 'POST', 'https://a/', 'TypeError']);
    });
  });

  describe('new Response()', () => {
    it('has the spec defaults', async () => {
      expect(
        await guest.run(`
          const r = new Response();
          return [r.status, r.statusText, r.ok, r.type, r.url, r.redirected, r.body, r.bodyUsed, r.webSocket, r.cf === undefined, [...r.headers]];
        `),
      ).toEqual([200, '', true, 'default', '', false, null, false, null, true, []]);
    });

    it('accepts statuses 200..599 only (RangeError), converting like WebIDL unsigned short', async () => {
      expect(
        await guest.run(`
          return [199, 200, 204.9, 299, 300, 599, 600, 0, -1, 65736, NaN].map((status) => {
            try { return new Response(null, { status }).status; } catch (e) { return e.constructor.name; }
          });
        `),
      ).toEqual(['RangeError', 200, 204, 299, 300, 599, 'RangeError', 'RangeError', 'RangeError', 200, 'RangeError']);
    });

    it('computes ok from the status', async () => {
      expect(await guest.run(`return [200, 299, 300, 404, 500].map((status) => new Response(null, { status }).ok)`)).toEqual([true, true, false, false, false]);
    });

    it('validates statusText as an HTTP reason-phrase', async () => {
      expect(
        await guest.run(`
          return ['OK', 'Not\\tFound', 'caf\\u00e9', 'a\\nb', 'a\\rb', '\\u20ac'].map((statusText) => {
            try { return new Response(null, { statusText }).statusText; } catch (e) { return e.constructor.name; }
          });
        `),
      ).toEqual(['OK', 'Not\tFound', 'café', 'TypeError', 'TypeError', 'TypeError']);
    });

    it('refuses a body with a null-body status, but lets an empty string through as no body (workerd)', async () => {
      expect(
        await guest.run(`
          const out = [];
          for (const status of [204, 205, 304]) {
            try { new Response('x', { status }); out.push('ok'); } catch (e) { out.push(e.constructor.name); }
          }
          const empty = new Response('', { status: 204 });
          out.push(empty.body, new Response(null, { status: 304 }).status);
          return out;
        `),
      ).toEqual(['TypeError', 'TypeError', 'TypeError', null, 304]);
    });

    it('fills headers from init and adds the body Content-Type', async () => {
      expect(
        await guest.run(`
          const r = new Response('hi', { headers: [['X-A', '1'], ['x-a', '2']] });
          return [...r.headers];
        `),
      ).toEqual([['content-type', 'text/plain;charset=UTF-8'], ['x-a', '1, 2']]);
    });

    it('clone() keeps status, headers (a copy) and the body', async () => {
      expect(
        await guest.run(`
          const r = new Response('body', { status: 201, statusText: 'Created', headers: { a: '1' } });
          const c = r.clone();
          c.headers.set('a', '2');
          return [c.status, c.statusText, r.headers.get('a'), c.headers.get('a'), await c.text(), await r.text()];
        `),
      ).toEqual([201, 'Created', '1', '2', 'body', 'body']);
    });

    it('refuses a webSocket in init that is not a WebSocket', async () => {
      expect(await guest.run(`try { new Response(null, { webSocket: {} }); return 'ok'; } catch (e) { return e.constructor.name; }`)).toBe('TypeError');
    });
  });

  describe('static constructors', () => {
    it('Response.json() serializes data and defaults Content-Type to application/json', async () => {
      expect(
        await guest.run(`
          const a = Response.json({ a: [1, 'x'] });
          const b = Response.json('s', { status: 201, headers: { 'content-type': 'application/vnd+json' } });
          const errors = [undefined, () => 1, Symbol('s')].map((v) => { try { Response.json(v); return 'ok'; } catch (e) { return e.constructor.name; } });
          let statusError = null;
          try { Response.json({}, { status: 204 }); } catch (e) { statusError = e.constructor.name; }
          return [a.status, a.headers.get('content-type'), await a.text(), b.status, b.headers.get('content-type'), await b.json(), errors, statusError];
        `),
      ).toEqual([200, 'application/json', '{"a":[1,"x"]}', 201, 'application/vnd+json', 's', ['TypeError', 'TypeError', 'TypeError'], 'TypeError']);
    });

    it('Response.redirect() sets Location (serialized), checks the status, and has no body', async () => {
      expect(
        await guest.run(`
          const r = Response.redirect('HTTPS://Example.com/a b');
          const statuses = [301, 302, 303, 307, 308].map((s) => Response.redirect('https://a/', s).status);
          const errors = [[200], [300], [304]].map(([s]) => { try { Response.redirect('https://a/', s); return 'ok'; } catch (e) { return e.constructor.name; } });
          let relative = null;
          try { Response.redirect('/relative'); } catch (e) { relative = e.constructor.name; }
          return [r.status, r.headers.get('location'), r.body, statuses, errors, relative];
        `),
      ).toEqual([302, 'https://example.com/a%20b', null, [301, 302, 303, 307, 308], ['RangeError', 'RangeError', 'RangeError'], 'TypeError']);
    });

    it('Response.error() is a network error with immutable headers', async () => {
      expect(
        await guest.run(`
          const r = Response.error();
          let error = null;
          try { r.headers.set('a', 'b'); } catch (e) { error = e.constructor.name; }
          const c = r.clone();
          let cloneError = null;
          try { c.headers.set('a', 'b'); } catch (e) { cloneError = e.constructor.name; }
          return [r.type, r.status, r.ok, r.statusText, r.body, error, c.type, cloneError];
        `),
      ).toEqual(['error', 0, false, '', null, 'TypeError', 'error', 'TypeError']);
    });
  });
});
