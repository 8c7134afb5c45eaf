// A probe of nodejs_compat, section by section, with deterministic answers: the same bundle runs
// in Cinder and in workerd (with nodejs_compat) and the JSON each section answers must match.
import { Buffer } from 'node:buffer';
import * as crypto from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import * as util from 'node:util';
import * as path from 'node:path';
import * as url from 'node:url';
import { StringDecoder } from 'node:string_decoder';
import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import assert from 'node:assert';

const PROBE_KEYS = {
 "rsa": "-----BEGIN PRIVATE KEY-----\nMIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBANiGlnhS1fPVwet+\n3aCR3aStp0qXdZ9fSfkHCISV+ao84drHbCpRPSQK0N+wAaeYOkDloYeQwYfDlbed\nd2glSXHXoqPHKuLP5BqwKX7qX7Sqk/jmsB5Iq51rbyzQ0zbM6D+LD0CCSgDDDbV2\nxW2KjCJSW58eK8ne3VEqgymOj87PAgMBAAECgYBgUVZkBe04v3C48kFiaSCgXcMa\nMk/Xakr8pP1MBW7/JIAPk0BxfpvlCY6qwp+pztSzA7McG++LFhzmhfyU7mlBkflX\nYcLqkugnrBcKNoaQrgU5O2qhpwXAYfwtCUHLhOCJ3HV6EjELMTPijkbRGLpPiP6a\nFUCrHgvr4C2l0A93iQJBAP0PwiIs6UrRFfXAbgfieJlNOWTFVRBrWaUJAx6UQTHu\nh5eWWMqJRfG2m8pb/42BOzrUouICI9QZV6OvSl+w8EUCQQDbCjlwSMv9lPVb2zp6\nAMItsX/mM0ZSEHt8UMNElAr/2GMfx5AgrdjAOZIvoHwfGfyRdC8Wqz05Ad2edBGA\nk+YDAkEArk8qc4vn7ebzb2Fq6PdwBniQ7f6Wx0aKawk4ItoPxir9LscaxfekPAiC\navLPplK7z5wjzfWXZENIgLD/U8Z22QJAO6zybyv2H5U4r5jvupOAU7CbNt1bWDpT\nWlAqkwF+aavLfboCA1U5y00kDcO8bUDINdygg52NpX1joqrepdglfwJAQwQAk3EZ\nO8AIhyBjBF+8bkKsMeC6DHPHBDCgSyMZG0iFeVrkwYZuzJkXCGaedQvjBfUV9PpW\nJzTRaU8QyhJkKw==\n-----END PRIVATE KEY-----\n",
 "ec": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEINr7ggHz6WtKryfskkH16qaNThAHxtP0TxOxkTKNp9cSoAoGCCqGSM49\nAwEHoUQDQgAEE6IqWdKHFBhpLJy0mOBbZXlsR+GyIyq8cP5wJSx2S9JoGvW28LaY\n4J6fM1KL/sHPx90OJMwRmHzuKtbqbbC7ug==\n-----END EC PRIVATE KEY-----\n",
 "ed": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEICRCcfdsiIUmkyxh2hm9nEEIz1MY4YgUjDmfFyEyLAp0\n-----END PRIVATE KEY-----\n",
 "x": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEIFDfKkzvptnx2GOqjy5gfEezaEaAg/tzb76AQZCInRhi\n-----END PRIVATE KEY-----\n",
 "x2": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEAv00w2ki8FETPEMSZmAqqdo56Siewb4/pE1NKGY/J7R0=\n-----END PUBLIC KEY-----\n"
};

const als = new AsyncLocalStorage();
const caught = (fn) => {
  try {
    return { value: fn() };
  } catch (error) {
    return { error: error.name, code: error.code ?? null };
  }
};

const sections = {
  buffer() {
    const b = Buffer.from('Grüße, 世界! 🙂');
    const n = Buffer.alloc(16);
    n.writeUInt16LE(0xbeef, 0);
    n.writeInt32BE(-123456, 2);
    n.writeDoubleLE(Math.PI, 6);
    return {
      utf8: b.toString(), hex: b.toString('hex'), base64: b.toString('base64'), base64url: b.toString('base64url'), latin1: b.toString('latin1'),
      ascii: Buffer.from('abc\u00ff', 'ascii').toString('hex'), ucs2: Buffer.from('hé', 'utf16le').toString('hex'), length: b.length, byteLength: Buffer.byteLength('Grüße'),
      fromB64url: Buffer.from('R3LDvMOfZQ', 'base64url').toString(), n: n.toString('hex'), reads: [n.readUInt16LE(0), n.readInt32BE(2), n.readDoubleLE(6)],
      slice: b.subarray(2, 6).toString('hex'), indexOf: b.indexOf('世'), includes: b.includes('界'), compare: Buffer.compare(Buffer.from([1]), Buffer.from([1, 0])),
      concat: Buffer.concat([Buffer.from('a'), Buffer.from('bc')], 2).toString(), fill: Buffer.alloc(5, 'ab').toString(), json: JSON.stringify(Buffer.from([1, 2])),
      equals: Buffer.from('x').equals(new Uint8Array([120])), isEncoding: ['utf8', 'UTF-8', 'hex', 'base64url', 'nope'].map((e) => Buffer.isEncoding(e)),
      swap: Buffer.from([1, 2, 3, 4]).swap16().toString('hex'), inspect: util.inspect(Buffer.from('hi')),
      badHex: Buffer.from('abz', 'hex').toString('hex'),
    };
  },
  crypto() {
    const text = 'The quick brown fox jumps over the lazy dog';
    const key = Buffer.alloc(32, 1);
    const iv = Buffer.alloc(16, 2);
    const gcm = crypto.createCipheriv('aes-256-gcm', key, iv.subarray(0, 12));
    gcm.setAAD(Buffer.from('header'));
    const sealed = Buffer.concat([gcm.update(text, 'utf8'), gcm.final()]).toString('hex');
    const cbc = crypto.createCipheriv('aes-128-cbc', key.subarray(0, 16), iv);
    const ctr = crypto.createCipheriv('aes-192-ctr', key.subarray(0, 24), iv);
    const decipher = crypto.createDecipheriv('aes-128-cbc', key.subarray(0, 16), iv);
    const cbcHex = cbc.update(text, 'utf8', 'hex') + cbc.final('hex');
    return {
      hashes: ['md5', 'sha1', 'sha256', 'sha384', 'sha512'].map((a) => crypto.createHash(a).update(text).digest('hex')),
      encodings: ['base64', 'base64url', 'latin1'].map((e) => crypto.createHash('sha256').update('x').digest(e)),
      streamed: crypto.createHash('sha1').update('The quick ').update(Buffer.from('brown fox')).update('6a', 'hex').digest('hex'),
      hmac: crypto.createHmac('sha256', 'key').update(text).digest('hex'), hmacLongKey: crypto.createHmac('sha512', 'k'.repeat(300)).update('').digest('base64'),
      pbkdf2: crypto.pbkdf2Sync('password', 'salt', 2048, 48, 'sha512').toString('hex'),
      hkdf: Buffer.from(crypto.hkdfSync('sha256', 'ikm', 'salt', 'info', 40)).toString('hex'),
      gcm: sealed, tag: gcm.getAuthTag().toString('hex'), cbc: cbcHex, ctr: ctr.update(text, 'utf8', 'base64') + ctr.final('base64'),
      decrypted: decipher.update(cbcHex, 'hex', 'utf8') + decipher.final('utf8'),
      tse: [crypto.timingSafeEqual(Buffer.from('a'), Buffer.from('a')), crypto.timingSafeEqual(Buffer.from('a'), Buffer.from('b'))],
      tseLength: caught(() => crypto.timingSafeEqual(Buffer.from('a'), Buffer.from('ab'))),
      randomLength: crypto.randomBytes(17).length, uuid: /^[0-9a-f-]{36}$/.test(crypto.randomUUID()), int: crypto.randomInt(5, 6),
      badDigest: caught(() => crypto.createHash('nope')).error, badKey: caught(() => crypto.createCipheriv('aes-128-cbc', Buffer.alloc(3), iv)).error,
      webcrypto: crypto.webcrypto === globalThis.crypto,
    };
  },
  // node:crypto's asymmetric half on fixed keys (deterministic answers only: PKCS#1 v1.5 and
  // Ed25519 signatures, agreed secrets, exports), plus what each refuses and how
  cryptoKeys() {
    const message = Buffer.from('probe message');
    const rsa = crypto.createPrivateKey(PROBE_KEYS.rsa);
    const rsaPublic = crypto.createPublicKey(rsa);
    const details = (k) => JSON.parse(JSON.stringify(k.asymmetricKeyDetails ?? null, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
    const signer = crypto.createSign('RSA-SHA256');
    signer.update('probe ');
    signer.update('message');
    const oaep = crypto.publicEncrypt(rsaPublic, Buffer.from('secret'));
    return {
      types: [rsa, rsaPublic].map((k) => [k.type, k.asymmetricKeyType, details(k)]),
      exports: { rsaSpki: rsaPublic.export({ type: 'spki', format: 'pem' }), rsaPkcs1: rsa.export({ type: 'pkcs1', format: 'pem' }), rsaJwk: rsaPublic.export({ format: 'jwk' }) },
      rsaPkcs1: crypto.sign('sha256', message, PROBE_KEYS.rsa).toString('base64'), rsaStreamed: signer.sign(PROBE_KEYS.rsa, 'base64'),
      rsaPss: crypto.verify('sha256', message, { key: rsaPublic.export({ type: 'spki', format: 'pem' }), padding: crypto.constants.RSA_PKCS1_PSS_PADDING }, crypto.sign('sha256', message, { key: PROBE_KEYS.rsa, padding: crypto.constants.RSA_PKCS1_PSS_PADDING })),
      oaep: [oaep.length, crypto.privateDecrypt(PROBE_KEYS.rsa, oaep).toString()],
      privateEncrypt: crypto.privateEncrypt(PROBE_KEYS.rsa, Buffer.from('raw')).toString('base64'),
    };
  },
  cryptoCurves() {
    const message = Buffer.from('probe message');
    const ec = crypto.createPrivateKey(PROBE_KEYS.ec);
    const ed = crypto.createPrivateKey(PROBE_KEYS.ed);
    const x = crypto.createPrivateKey(PROBE_KEYS.x);
    const details = (k) => JSON.parse(JSON.stringify(k.asymmetricKeyDetails ?? null));
    const ecSig = crypto.sign('sha256', message, { key: PROBE_KEYS.ec, dsaEncoding: 'ieee-p1363' });
    return {
      types: [ec, ed, x].map((k) => [k.type, k.asymmetricKeyType, details(k)]),
      exports: {
        ecPkcs8: ec.export({ type: 'pkcs8', format: 'der' }).toString('base64'), ecSec1: ec.export({ type: 'sec1', format: 'pem' }), ecJwk: ec.export({ format: 'jwk' }),
        edSpki: crypto.createPublicKey(ed).export({ type: 'spki', format: 'der' }).toString('hex'), edJwk: ed.export({ format: 'jwk' }), xJwk: crypto.createPublicKey(x).export({ format: 'jwk' }),
      },
      ecVerify: [ecSig.length, crypto.verify('sha256', message, { key: crypto.createPublicKey(PROBE_KEYS.ec).export({ type: 'spki', format: 'pem' }), dsaEncoding: 'ieee-p1363' }, ecSig)],
      ed25519: crypto.sign(null, message, ed).toString('base64'),
    };
  },
  // (a section of its own: each section is one request, under the default CPU limit)
  cryptoAgree() {
    const x = crypto.createPrivateKey(PROBE_KEYS.x);
    const ecdh = crypto.createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.alloc(32, 7));
    const peer = crypto.createECDH('prime256v1');
    peer.setPrivateKey(Buffer.alloc(32, 9));
    const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const okp = crypto.generateKeyPairSync('ed25519');
    const details = (k) => JSON.parse(JSON.stringify(k.asymmetricKeyDetails ?? null));
    return {
      x25519: crypto.diffieHellman({ privateKey: x, publicKey: crypto.createPublicKey(PROBE_KEYS.x2) }).toString('hex'),
      ecdh: [ecdh.getPublicKey('hex', 'compressed'), ecdh.computeSecret(peer.getPublicKey()).toString('hex')],
      generated: [pair.publicKey.asymmetricKeyType, details(pair.privateKey), okp.publicKey.export({ format: 'jwk' }).crv, pair.privateKey.equals(pair.privateKey), pair.publicKey.equals(okp.publicKey)],
      secret: (() => { const k = crypto.createSecretKey(Buffer.from('abc')); return [k.type, k.symmetricKeySize, k.export().toString()]; })(),
    };
  },
  cryptoKdf() {
    const rsaPublic = crypto.createPublicKey(PROBE_KEYS.rsa);
    return {
      modp: crypto.createHash('sha256').update(crypto.getDiffieHellman('modp14').getPrime()).digest('hex'),
      scrypt: crypto.scryptSync('password', 'salt', 32, { N: 16, r: 4, p: 2 }).toString('hex'),
      curves: crypto.getCurves(),
      p224: (() => { const e = crypto.createECDH('secp224r1'); e.setPrivateKey(Buffer.alloc(28, 5)); return e.getPublicKey('hex', 'compressed'); })(),
      // and md4, md5-sha1
      verifyError: [crypto.createDiffieHellman(crypto.getDiffieHellman('modp14').getPrime(), 2).verifyError, crypto.createDiffieHellman(Buffer.from('17', 'hex')).verifyError, crypto.createDiffieHellman(Buffer.from('15', 'hex'), 5).verifyError],
      primes: [crypto.checkPrimeSync(2n ** 127n - 1n), crypto.checkPrimeSync(2n ** 128n + 1n), crypto.checkPrimeSync(Buffer.from([0x0d])), crypto.generatePrimeSync(16).byteLength, typeof crypto.generatePrimeSync(40, { bigint: true }), crypto.generatePrimeSync(32, { add: 12n, rem: 11n, bigint: true }) % 12n === 11n],
      hashes: crypto.getHashes().filter((h) => h !== 'md4' && h !== 'md5-sha1'),
      hashAliases: ['RSA-SHA224', 'DSA-SHA', 'ecdsa-with-SHA1'].map((h) => crypto.createHash(h).update('x').digest('hex')),
      errors: {
        ed448: caught(() => crypto.generateKeyPairSync('ed448')),
        badCurve: caught(() => crypto.createECDH('secp256k1')),
        notKey: caught(() => crypto.createPublicKey('not a key')).error,
        wrongType: caught(() => crypto.createPrivateKey(rsaPublic.export({ type: 'spki', format: 'pem' }))).error,
        bigScrypt: caught(() => crypto.scryptSync('a', 'b', 16, { N: 2 ** 20 })).error,
        badGroup: caught(() => crypto.getDiffieHellman('modp99')),
        smallGroup: (() => { try { crypto.getDiffieHellman('modp2'); return 'accepted'; } catch (e) { return e.message; } })(),
      },
    };
  },
  async events() {
    const e = new EventEmitter();
    const log = [];
    e.on('a', (x) => log.push(`on ${x}`));
    e.prependListener('a', (x) => log.push(`first ${x}`));
    e.once('a', (x) => log.push(`once ${x}`));
    e.emit('a', 1);
    e.emit('a', 2);
    log.push(`count ${e.listenerCount('a')}`, `names ${e.eventNames().join(',')}`);
    const unhandled = caught(() => e.emit('error', new Error('bad')));
    setTimeout(() => e.emit('later', 'v', 'w'), 1);
    const args = await once(e, 'later');
    return { log, unhandled: unhandled.error, args, max: e.getMaxListeners() };
  },
  util() {
    return {
      format: [util.format('%s:%d:%i:%f:%j', 'a', 1.5, 2.7, '3.5', { x: [1] }), util.format('%o', { a: 1 }), util.format('no args %s'), util.format(1, 'two', { three: 3 })],
      inspect: [util.inspect({ a: { b: { c: { d: {} } } } }), util.inspect(new Map([[1, { a: [] }]])), util.inspect('str'), util.inspect([1, 2, 3], { depth: 0 }), util.inspect(new Error('e')).split('\n')[0]],
      types: [util.types.isDate(new Date()), util.types.isRegExp(/a/), util.types.isPromise(Promise.resolve()), util.types.isAnyArrayBuffer(new ArrayBuffer(1)), util.types.isTypedArray(Buffer.alloc(1)), util.types.isGeneratorFunction(function* () {}), util.types.isNativeError(new TypeError())],
      deep: [util.isDeepStrictEqual({ a: [1, 2] }, { a: [1, 2] }), util.isDeepStrictEqual({ a: 1 }, { a: '1' }), util.isDeepStrictEqual(new Set([1]), new Set([1]))],
      promisifyCustom: typeof util.promisify.custom, inheritsProto: (() => { function A() {} function B() {} util.inherits(A, B); return Object.getPrototypeOf(A.prototype) === B.prototype; })(),
      strip: util.stripVTControlCharacters('\u001b[32mgreen\u001b[0m'),
    };
  },
  path() {
    return {
      join: path.join('/foo', 'bar', 'baz/asdf', 'quux', '..'), resolve: path.resolve('/foo/bar', './baz'), relative: path.relative('/data/orandea/test/aaa', '/data/orandea/impl/bbb'),
      normalize: path.normalize('/foo/bar//baz/asdf/quux/..'), parse: path.parse('/home/user/dir/file.txt'), format: path.format({ root: '/', dir: '/home/user/dir', base: 'file.txt' }),
      basename: [path.basename('/a/b.html', '.html'), path.basename('/a/b/')], dirname: path.dirname('/a/b/c'), extname: [path.extname('index.coffee.md'), path.extname('.index'), path.extname('index.')],
      isAbsolute: [path.isAbsolute('/x'), path.isAbsolute('x')], sep: path.sep, delimiter: path.delimiter,
    };
  },
  url() {
    const parsed = url.parse('http://user:pass@host.com:8080/p/a/t/h?query=string#hash');
    return {
      fileURLToPath: url.fileURLToPath('file:///some/path%20with%20space'), pathToFileURL: url.pathToFileURL('/some/path#hash?x').href,
      parse: { protocol: parsed.protocol, slashes: parsed.slashes, auth: parsed.auth, host: parsed.host, port: parsed.port, hostname: parsed.hostname, hash: parsed.hash, search: parsed.search, query: parsed.query, pathname: parsed.pathname, path: parsed.path, href: parsed.href },
      format: url.format({ protocol: 'https', hostname: 'example.com', pathname: '/some/path', query: { page: 1, format: 'json' } }),
      resolve: [url.resolve('/one/two/three', 'four'), url.resolve('http://example.com/', '/one'), url.resolve('http://example.com/one', '/two')],
      whatwg: new url.URL('https://例え.jp/a?b=c').href,
    };
  },
  string_decoder() {
    const d = new StringDecoder('utf8');
    const bytes = Buffer.from('€𝄞');
    const out = [];
    for (let i = 0; i < bytes.length; i++) out.push(d.write(bytes.subarray(i, i + 1)));
    out.push(d.end(Buffer.from([0xe2])));
    const b64 = new StringDecoder('base64');
    return { out, b64: [b64.write(Buffer.from('ab')), b64.write(Buffer.from('c')), b64.end()] };
  },
  async als() {
    const log = [];
    await Promise.all(
      ['a', 'b', 'c'].map((id, i) =>
        als.run(id, async () => {
          await new Promise((r) => setTimeout(r, (3 - i) * 2));
          log.push(`${id}:${als.getStore()}`);
          await null;
          const resource = new AsyncResource('probe');
          log.push(`${id}:${await new Promise((r) => setTimeout(() => r(resource.runInAsyncScope(() => als.getStore())), 1))}`);
        }),
      ),
    );
    return { log: log.sort(), outside: als.getStore() ?? null, exit: als.run('x', () => als.exit(() => als.getStore() ?? null)) };
  },
  async stream() {
    const out = [];
    await pipeline(
      Readable.from(['a', 'b', 'c']),
      new Transform({ transform(chunk, _enc, cb) { cb(null, chunk.toString().toUpperCase() + chunk.toString()); } }),
      new Writable({ write(chunk, _enc, cb) { out.push(chunk.toString()); cb(); } }),
    );
    return { out };
  },
  assert() {
    const fail = (fn) => { try { fn(); return null; } catch (e) { return { name: e.name, code: e.code, operator: e.operator }; } };
    return { strictEqual: fail(() => assert.strictEqual(1, 2)), deep: fail(() => assert.deepStrictEqual({ a: 1 }, { a: 1 })), ok: fail(() => assert.ok(0)), throws: fail(() => assert.throws(() => {})) };
  },
};

export default {
  async fetch(request) {
    const name = new URL(request.url).pathname.slice(1);
    const section = sections[name];
    if (!section) return new Response('no such section', { status: 404 });
    return new Response(JSON.stringify(await section(), null, 1), { headers: { 'content-type': 'application/json' } });
  },
};
