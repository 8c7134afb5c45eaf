// The node:* modules of nodejs_compat, each used by a worker through a real HTTP request, with the
// answers checked against what Node itself computes for the same input.
import { createCipheriv, createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const compat = { compatibilityDate: '2025-05-01', compatibilityFlags: ['nodejs_compat'] };
// These tests are about what the modules answer, not their CPU: a first request compiles the
// add-ons' code (node:stream ~6 ms here; the node:crypto worker's hashes, ciphers and PBKDF2 in
// the guest ~27 ms of the 50 ms default), which a slower, loaded CI machine could cross.
const ROOMY = { cpuMs: 1000 };

// Each worker answers JSON of what it computed.
const workers: Record<string, string> = {
  buffer: `import { Buffer, isUtf8, kMaxLength, constants } from 'node:buffer';
    import bufferDefault from 'buffer';
    export default { fetch() {
      const b = Buffer.from('héllo wörld');
      const n = Buffer.alloc(8); n.writeUInt32BE(0xdeadbeef, 0); n.writeInt32LE(-2, 4);
      return Response.json({
        hex: b.toString('hex'), base64: b.toString('base64'), base64url: Buffer.from([251, 255, 191]).toString('base64url'),
        fromUrl: Buffer.from('-_-_', 'base64url').toString('hex'), latin1: Buffer.from('ÿ', 'latin1')[0],
        concat: Buffer.concat([Buffer.from('ab'), Buffer.from('cd')]).toString(), n: n.toString('hex'), read: n.readUInt32BE(0),
        slice: b.subarray(0, 2).toString(), eq: Buffer.from('x').equals(Buffer.from('x')), cmp: Buffer.compare(Buffer.from('a'), Buffer.from('b')),
        isBuffer: Buffer.isBuffer(b), isUint8: b instanceof Uint8Array, utf8: isUtf8(b), notUtf8: isUtf8(new Uint8Array([0xff])),
        json: Buffer.from('hi').toJSON(), byteLength: Buffer.byteLength('ab_-', 'base64url'), kMaxLength: kMaxLength > 0, max: constants.MAX_LENGTH === kMaxLength,
        bare: bufferDefault.Buffer === Buffer, global: globalThis.Buffer === Buffer, inspect: String(Buffer.from([1, 2]).inspect()),
      });
    } }`,
  events: `import EventEmitter, { once, on, errorMonitor } from 'node:events';
    export default { async fetch() {
      const e = new EventEmitter(); const seen = [];
      e.on('x', (a, b) => seen.push('on:' + a + b)); e.once('x', (a) => seen.push('once:' + a));
      e.emit('x', 1, 2); e.emit('x', 3, 4);
      e.on(errorMonitor, (err) => seen.push('monitor:' + err.message)); e.on('error', (err) => seen.push('error:' + err.message));
      e.emit('error', new Error('boom'));
      setTimeout(() => e.emit('ready', 'go'), 1);
      const [value] = await once(e, 'ready');
      const it = on(e, 'tick'); setTimeout(() => { e.emit('tick', 1); e.emit('tick', 2); }, 1);
      const ticks = []; for await (const [n] of it) { ticks.push(n); if (ticks.length === 2) break; }
      class Sub extends EventEmitter {}
      return Response.json({ seen, value, ticks, count: e.listenerCount('x'), sub: new Sub() instanceof EventEmitter, ee: EventEmitter.EventEmitter === EventEmitter });
    } }`,
  decoder: `import { StringDecoder } from 'node:string_decoder';
    export default { fetch() {
      const d = new StringDecoder('utf8'); const euro = new TextEncoder().encode('€');
      const parts = [d.write(euro.subarray(0, 1)), d.write(euro.subarray(1)), d.end()];
      const h = new StringDecoder('hex');
      return Response.json({ parts, hex: h.write(new Uint8Array([1, 255])) });
    } }`,
  path: `import path, { join, resolve, relative, parse, basename, extname, dirname, normalize, isAbsolute, sep } from 'node:path';
    import posix from 'node:path/posix';
    export default { fetch() {
      return Response.json({
        join: join('/a/b', '../c', './d.txt'), resolve: resolve('/x', 'y', '..', 'z'), relative: relative('/a/b/c', '/a/d'), parse: parse('/home/u/file.tar.gz'),
        basename: basename('/a/b.js', '.js'), ext: extname('x.md'), dir: dirname('/a/b/c'), norm: normalize('/a//b/../c/.'), abs: isAbsolute('a/b'), sep,
        same: path.posix === posix.posix, rel: resolve('rel'),
      });
    } }`,
  url: `import { fileURLToPath, pathToFileURL, parse, format, resolve, URL as NodeURL, URLSearchParams as Params } from 'node:url';
    export default { fetch() {
      const u = parse('https://user:pw@Example.com:8080/p/a/t/h?query=string&a=1#hash', true);
      return Response.json({
        path: fileURLToPath('file:///tmp/a%20b.txt'), url: pathToFileURL('/tmp/a b#.txt').href,
        parsed: { protocol: u.protocol, auth: u.auth, host: u.host, port: u.port, hostname: u.hostname, hash: u.hash, search: u.search, query: { ...u.query }, pathname: u.pathname, path: u.path, href: u.href },
        formatted: format({ protocol: 'https', hostname: 'example.com', pathname: '/x', query: { a: '1', b: ['2', '3'] } }),
        resolved: resolve('http://example.com/one/two', '../three'), sameURL: NodeURL === URL, sameParams: Params === URLSearchParams,
        notFile: (() => { try { fileURLToPath('https://x'); } catch (e) { return e.code; } })(),
      });
    } }`,
  util: `import util, { format, inspect, promisify, callbackify, inherits, types, isDeepStrictEqual, TextEncoder as TE, deprecate } from 'node:util';
    import * as typesModule from 'node:util/types';
    export default { async fetch() {
      const later = (v, cb) => setTimeout(() => cb(null, v * 2), 1);
      const fails = (cb) => cb(new Error('nope'));
      const doubled = await promisify(later)(21);
      const rejected = await promisify(fails)().catch((e) => e.message);
      const cbResult = await new Promise((r) => callbackify(async (x) => x + 1)(1, (err, v) => r([err, v])));
      function A() {} function B() {} inherits(A, B);
      const warned = deprecate(() => 'ok', 'old api', 'DEP0');
      return Response.json({
        format: format('%s=%d %j %o', 'a', 42, { b: 1 }, [1]), inspect: inspect({ a: [1, { b: new Map([[1, 2]]) }] }, { depth: 0 }), nested: inspect({ a: { b: { c: { d: 1 } } } }),
        doubled, rejected, cbResult, inherits: new A() instanceof B && A.super_ === B,
        types: [types.isDate(new Date()), types.isRegExp(/x/), types.isPromise(Promise.resolve()), types.isUint8Array(new Uint8Array()), types.isMap(new Map()), types.isAsyncFunction(async () => {}), types.isDate({}), types.isBoxedPrimitive(Object(1))],
        typesModule: typesModule.isSet(new Set()), deep: [isDeepStrictEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), isDeepStrictEqual([1], ['1'])],
        te: TE === TextEncoder, custom: inspect({ [inspect.custom]: () => 'CUSTOM' }), warned: [warned(), warned()], default: util.format === format,
      });
    } }`,
  assert: `import assert, { deepStrictEqual, AssertionError, strictEqual } from 'node:assert';
    import strict from 'node:assert/strict';
    export default { async fetch() {
      const caught = (fn) => { try { fn(); return null; } catch (e) { return { name: e.name, code: e.code, isAE: e instanceof AssertionError, message: e.message.split('\\n')[0] }; } };
      return Response.json({
        ok: caught(() => { assert(true); assert.ok(1); deepStrictEqual({ a: [1] }, { a: [1] }); assert.equal(1, '1'); }),
        strictEq: caught(() => strictEqual(1, 2)), deep: caught(() => deepStrictEqual({ a: 1 }, { a: 2 })),
        loose: caught(() => strict.equal(1, '1')), throws: caught(() => assert.throws(() => { throw new TypeError('x'); }, TypeError)),
        rejects: await assert.rejects(Promise.reject(new Error('r'))).then(() => 'rejected as expected'),
      });
    } }`,
  stream: `import { Readable, Writable, Transform, PassThrough, pipeline } from 'node:stream';
    import { pipeline as pipelinePromise } from 'node:stream/promises';
    import { ReadableStream as WebReadable } from 'node:stream/web';
    export default { async fetch() {
      const chunks = [];
      const upper = new Transform({ transform(chunk, enc, cb) { cb(null, chunk.toString().toUpperCase()); } });
      await pipelinePromise(Readable.from(['a', 'b', 'c']), upper, new Writable({ write(chunk, enc, cb) { chunks.push(chunk.toString()); cb(); } }));
      const viaCallback = await new Promise((resolve) => {
        const out = []; const pass = new PassThrough();
        pipeline(Readable.from([Buffer.from('x'), Buffer.from('y')]), pass, new Writable({ write(c, e, cb) { out.push(c.toString()); cb(); } }), (err) => resolve(err ? err.message : out.join('')));
      });
      const collected = []; for await (const c of Readable.from([1, 2, 3])) collected.push(c);
      const web = Readable.toWeb ? 'toWeb' : 'none';
      return Response.json({ chunks, viaCallback, collected, web, sameWeb: WebReadable === ReadableStream });
    } }`,
  process: `import process, { env, nextTick } from 'node:process';
    export default { async fetch(req, workerEnv) {
      const order = [];
      await new Promise((resolve) => { nextTick(() => order.push('tick')); Promise.resolve().then(() => order.push('promise')); setTimeout(resolve, 1); });
      return Response.json({
        same: globalThis.process === process, env: { ...process.env }, named: env === process.env, order,
        version: process.version.startsWith('v'), platform: process.platform, cwd: process.cwd(), hr: process.hrtime.bigint() >= 0n,
        emitter: typeof process.on, exit: (() => { try { process.exit(1); } catch (e) { return e.code; } })(),
      });
    } }`,
};

let server: TestServer;
beforeAll(async () => {
  const specs: Record<string, object> = {};
  for (const [name, code] of Object.entries(workers)) specs[name] = { code, ...compat, limits: ROOMY };
  specs.process = {
    code: workers.process,
    ...compat,
    limits: ROOMY,
    bindings: { GREETING: { type: 'plain_text', text: 'hello' }, TOKEN: { type: 'secret_text', text: 's3cret' }, CONFIG: { type: 'json', json: { a: 1 } } },
  };
  server = await startTestServer(specs as never);
});
afterAll(() => server.close());

async function json(name: string): Promise<Record<string, unknown>> {
  const res = await server.request(name);
  if (res.status !== 200) throw new Error(`${name}: ${res.status} ${res.text} ${JSON.stringify(server.logs.slice(-3))}`);
  return JSON.parse(res.text);
}

describe('nodejs_compat modules, from a worker', () => {
  it('node:buffer: encodings (base64url too), binary reads and writes, the global Buffer is the same class', async () => {
    const b = Buffer.from('héllo wörld');
    const n = Buffer.alloc(8);
    n.writeUInt32BE(0xdeadbeef, 0);
    n.writeInt32LE(-2, 4);
    expect(await json('buffer')).toEqual({
      hex: b.toString('hex'), base64: b.toString('base64'), base64url: Buffer.from([251, 255, 191]).toString('base64url'),
      fromUrl: Buffer.from('-_-_', 'base64url').toString('hex'), latin1: 255, concat: 'abcd', n: n.toString('hex'), read: 0xdeadbeef,
      slice: b.subarray(0, 2).toString(), eq: true, cmp: -1, isBuffer: true, isUint8: true, utf8: true, notUtf8: false,
      json: { type: 'Buffer', data: [104, 105] }, byteLength: Buffer.byteLength('ab_-', 'base64url'), kMaxLength: true, max: true, bare: true, global: true,
      inspect: '<Buffer 01 02>',
    });
  });

  it('node:events: on/once/emit, errorMonitor, once() and on() over awaits', async () => {
    expect(await json('events')).toEqual({
      seen: ['on:12', 'once:1', 'on:34', 'monitor:boom', 'error:boom'], value: 'go', ticks: [1, 2], count: 1, sub: true, ee: true,
    });
  });

  it('node:string_decoder: a character split across writes', async () => {
    expect(await json('decoder')).toEqual({ parts: ['', '€', ''], hex: '01ff' });
  });

  it('node:path (POSIX), relative paths resolving from /bundle as on workerd', async () => {
    expect(await json('path')).toEqual({
      join: '/a/c/d.txt', resolve: '/x/z', relative: '../../d', parse: { root: '/', dir: '/home/u', base: 'file.tar.gz', ext: '.gz', name: 'file.tar' },
      basename: 'b', ext: '.md', dir: '/a/b', norm: '/a/c', abs: false, sep: '/', same: true, rel: '/bundle/rel',
    });
  });

  it('node:url: file URLs, legacy parse/format/resolve, the WHATWG classes', async () => {
    expect(await json('url')).toEqual({
      path: '/tmp/a b.txt', url: 'file:///tmp/a%20b%23.txt',
      parsed: {
        protocol: 'https:', auth: 'user:pw', host: 'example.com:8080', port: '8080', hostname: 'example.com', hash: '#hash', search: '?query=string&a=1',
        query: { query: 'string', a: '1' }, pathname: '/p/a/t/h', path: '/p/a/t/h?query=string&a=1', href: 'https://user:pw@example.com:8080/p/a/t/h?query=string&a=1#hash',
      },
      formatted: 'https://example.com/x?a=1&b=2&b=3', resolved: 'http://example.com/three', sameURL: true, sameParams: true, notFile: 'ERR_INVALID_URL_SCHEME',
    });
  });

  it('node:util: format, inspect, promisify/callbackify, inherits, types, isDeepStrictEqual, deprecate', async () => {
    const body = await json('util');
    expect(body).toEqual({
      format: 'a=42 {"b":1} [ 1, [length]: 1 ]', inspect: '{ a: [Array] }', nested: '{ a: { b: { c: [Object] } } }', doubled: 42, rejected: 'nope', cbResult: [null, 2], inherits: true,
      types: [true, true, true, true, true, true, false, true], typesModule: true, deep: [true, false], te: true, custom: 'CUSTOM', warned: ['ok', 'ok'], default: true,
    });
    expect(server.logs.filter((l) => String(l.msg ?? l.message ?? '').includes('DeprecationWarning: old api')).length).toBeLessThanOrEqual(1);
  });

  it('node:assert and node:assert/strict: AssertionError with code ERR_ASSERTION', async () => {
    const body = await json('assert');
    expect(body.ok).toBeNull();
    expect(body.strictEq).toMatchObject({ name: 'AssertionError', code: 'ERR_ASSERTION', isAE: true });
    expect(body.deep).toMatchObject({ code: 'ERR_ASSERTION', isAE: true });
    expect(body.loose).toMatchObject({ code: 'ERR_ASSERTION' });
    expect(body.throws).toBeNull();
    expect(body.rejects).toBe('rejected as expected');
  });

  it('node:stream: Readable/Transform/Writable through pipeline (both forms), async iteration, stream/web', async () => {
    expect(await json('stream')).toEqual({ chunks: ['A', 'B', 'C'], viaCallback: 'xy', collected: [1, 2, 3], web: 'toWeb', sameWeb: true });
  });

  it('node:process: env holds the text bindings (vars and secrets), nextTick before promises, workerd-like facts', async () => {
    const body = await json('process');
    expect(body).toMatchObject({ same: true, env: { GREETING: 'hello', TOKEN: 's3cret' }, named: true, version: true, platform: 'linux', cwd: '/bundle', hr: true, emitter: 'function', exit: 'ERR_METHOD_NOT_IMPLEMENTED' });
    expect((body.env as Record<string, unknown>).CONFIG).toBeUndefined();
    expect(body.order).toEqual(['tick', 'promise']);
  });
});

describe('node:crypto, from a worker, against Node', () => {
  const key = Buffer.alloc(32, 7);
  const iv = Buffer.alloc(16, 9);
  const gcmIv = Buffer.alloc(12, 3);
  const worker = `import crypto, { createHash, createHmac, randomBytes, randomUUID, randomInt, timingSafeEqual, pbkdf2Sync, pbkdf2, createCipheriv, createDecipheriv, getRandomValues, webcrypto, subtle, hkdfSync } from 'node:crypto';
    export default { async fetch(req) {
      const text = await req.text();
      const key = Buffer.alloc(32, 7), iv = Buffer.alloc(16, 9), gcmIv = Buffer.alloc(12, 3);
      const hashes = {}; for (const alg of ['md5', 'sha1', 'sha256', 'sha384', 'sha512']) hashes[alg] = createHash(alg).update(text).digest('hex');
      const streamed = createHash('sha256').update('héllo ', 'utf8').update('776f726c64', 'hex').update(Buffer.from('!')).digest('base64');
      const copy = createHash('sha1').update('a'); const copied = copy.copy().update('b').digest('hex');
      const c = createCipheriv('aes-256-gcm', key, gcmIv); c.setAAD(Buffer.from('aad'));
      const gcm = Buffer.concat([c.update(text, 'utf8'), c.final()]); const tag = c.getAuthTag();
      const d = createDecipheriv('aes-256-gcm', key, gcmIv); d.setAAD(Buffer.from('aad')); d.setAuthTag(tag);
      const back = d.update(gcm, undefined, 'utf8') + d.final('utf8');
      const tampered = (() => { const t = createDecipheriv('aes-256-gcm', key, gcmIv); t.setAAD(Buffer.from('aad')); t.setAuthTag(Buffer.alloc(16)); t.update(gcm); try { t.final(); return 'accepted'; } catch (e) { return e.message; } })();
      const cbc = createCipheriv('aes-256-cbc', key, iv).update(text, 'utf8', 'hex') ; const cbcAll = cbc + createCipheriv('aes-256-cbc', key, iv).final('hex');
      const cbcFull = (() => { const x = createCipheriv('aes-256-cbc', key, iv); return x.update(text, 'utf8', 'hex') + x.final('hex'); })();
      const ctr = (() => { const x = createCipheriv('aes-128-ctr', key.subarray(0, 16), iv); return x.update(text, 'utf8', 'hex') + x.final('hex'); })();
      const asyncKey = await new Promise((r, j) => pbkdf2('pw', 'salt', 1000, 32, 'sha256', (err, k) => err ? j(err) : r(k.toString('hex'))));
      const uuid = randomUUID(); const ints = Array.from({ length: 200 }, () => randomInt(3, 7));
      return Response.json({
        hashes, streamed, copied, hmac: createHmac('sha256', 'secret').update(text).digest('hex'), hmac512: createHmac('sha512', Buffer.alloc(200, 1)).update(text).digest('base64'),
        gcm: gcm.toString('hex'), tag: tag.toString('hex'), back, tampered, cbc: cbcFull, ctr,
        pbkdf2: pbkdf2Sync('pw', 'salt', 1000, 64, 'sha512').toString('hex'), asyncKey, hkdf: Buffer.from(hkdfSync('sha256', 'k', 's', 'i', 42)).toString('hex'),
        random: randomBytes(24).length, uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid), intsInRange: ints.every((i) => i >= 3 && i < 7), allSeen: new Set(ints).size,
        tse: [timingSafeEqual(Buffer.from('abc'), Buffer.from('abc')), timingSafeEqual(Buffer.from('abc'), Buffer.from('abd'))],
        tseLength: (() => { try { timingSafeEqual(Buffer.from('a'), Buffer.from('ab')); } catch (e) { return e.name; } })(),
        badDigest: (() => { try { createHash('sha3-999'); } catch (e) { return e.message; } })(),
        gv: getRandomValues(new Uint8Array(4)).length, webcrypto: webcrypto === globalThis.crypto && subtle === crypto.subtle, defaultExport: crypto.createHash === createHash,
      });
    } }`;
  let cryptoServer: TestServer;
  beforeAll(async () => {
    cryptoServer = await startTestServer({ c: { code: worker, ...compat, limits: ROOMY } } as never);
  });
  afterAll(() => cryptoServer.close());

  it('hashes, HMAC, PBKDF2, HKDF and AES-GCM/CBC/CTR give what Node gives; random and timingSafeEqual behave', async () => {
    const text = 'The quick brown fox 🦊 jumps over the lazy dog. '.repeat(5);
    const res = await cryptoServer.request('c', '/', { method: 'POST', body: text });
    expect(res.status, res.text).toBe(200);
    const body = JSON.parse(res.text);
    const hashes: Record<string, string> = {};
    for (const alg of ['md5', 'sha1', 'sha256', 'sha384', 'sha512']) hashes[alg] = createHash(alg).update(text).digest('hex');
    const c = createCipheriv('aes-256-gcm', key, gcmIv);
    c.setAAD(Buffer.from('aad'));
    const gcm = Buffer.concat([c.update(text, 'utf8'), c.final()]);
    const cbc = createCipheriv('aes-256-cbc', key, iv);
    const ctr = createCipheriv('aes-128-ctr', key.subarray(0, 16), iv);
    expect(body).toEqual({
      hashes,
      streamed: createHash('sha256').update('héllo world!').digest('base64'),
      copied: createHash('sha1').update('ab').digest('hex'),
      hmac: createHmac('sha256', 'secret').update(text).digest('hex'),
      hmac512: createHmac('sha512', Buffer.alloc(200, 1)).update(text).digest('base64'),
      gcm: gcm.toString('hex'), tag: c.getAuthTag().toString('hex'), back: text, tampered: 'Unsupported state or unable to authenticate data',
      cbc: cbc.update(text, 'utf8', 'hex') + cbc.final('hex'), ctr: ctr.update(text, 'utf8', 'hex') + ctr.final('hex'),
      pbkdf2: pbkdf2Sync('pw', 'salt', 1000, 64, 'sha512').toString('hex'), asyncKey: pbkdf2Sync('pw', 'salt', 1000, 32, 'sha256').toString('hex'),
      hkdf: Buffer.from(await import('node:crypto').then((m) => m.hkdfSync('sha256', 'k', 's', 'i', 42))).toString('hex'),
      random: 24, uuid: true, intsInRange: true, allSeen: 4, tse: [true, false], tseLength: 'TypeError',
      badDigest: 'Digest method not supported: sha3-999', gv: 4, webcrypto: true, defaultExport: true,
    });
  });
});
