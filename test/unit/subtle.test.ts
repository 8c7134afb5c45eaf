// crypto.subtle inside a real isolate, served by the real host half (bindings/crypto/host.ts):
// keys made or used in the guest round-trip against Node's own crypto (node:crypto and its
// WebCrypto) both ways, errors arrive as the right DOMExceptions, and workerd's extras
// (timingSafeEqual, DigestStream, NODE-ED25519) behave as there.
import crypto, { webcrypto } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cryptoOp, liveKeys } from '../../bindings/crypto/host.js';
import type { OpCall } from '../../src/runtime/contract.js';
import { createGuest, type Guest } from '../helpers/guest.js';

const subtle = webcrypto.subtle;
let guest: Guest;
const opState = new Map<string, unknown>();
const opCall = {
  isolateState: <T,>(family: string, create: () => T): T => {
    if (!opState.has(family)) opState.set(family, create());
    return opState.get(family) as T;
  },
} as unknown as OpCall;

beforeAll(async () => {
  guest = await createGuest({ ops: { crypto: (args) => cryptoOp(opCall, args) } });
});
afterAll(() => guest.dispose());

const PRELUDE = `
  const enc = (s) => new TextEncoder().encode(s);
  const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
  const unhex = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
  const attempt = async (f) => { try { await f(); return 'no error'; } catch (e) { return { name: e.name, dom: e instanceof DOMException, code: e.code, message: e.message }; } };
  const s = crypto.subtle;
`;
const run = <T = unknown>(code: string) => guest.run<T>(PRELUDE + code);
const hex = (b: ArrayBuffer | Uint8Array | Buffer) => Buffer.from(b as ArrayBuffer).toString('hex');
const buf = (h: string) => Buffer.from(h, 'hex');
const u8 = (b: ArrayBuffer) => new Uint8Array(b);

describe('interfaces', () => {
  it('puts SubtleCrypto, CryptoKey and DigestStream where workerd has them', async () => {
    expect(
      await run(`return [crypto.subtle instanceof SubtleCrypto, crypto.subtle === crypto.subtle, Object.prototype.toString.call(crypto.subtle),
        (await attempt(() => new SubtleCrypto())).name, (await attempt(() => new CryptoKey())).name, typeof crypto.DigestStream,
        Object.getPrototypeOf(crypto.DigestStream.prototype) === WritableStream.prototype, SubtleCrypto.name, CryptoKey.name,
        Object.getOwnPropertyNames(SubtleCrypto.prototype).sort()]`),
    ).toEqual([
      true, true, '[object SubtleCrypto]', 'TypeError', 'TypeError', 'function', true, 'SubtleCrypto', 'CryptoKey',
      ['constructor', 'decrypt', 'deriveBits', 'deriveKey', 'digest', 'encrypt', 'exportKey', 'generateKey', 'importKey', 'sign', 'timingSafeEqual', 'unwrapKey', 'verify', 'wrapKey'],
    ]);
  });

  it('gives keys own read-only attributes, as workerd does, with cached objects', async () => {
    expect(
      await run(`const k = await s.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign', 'verify']);
        const d = Object.getOwnPropertyDescriptor(k, 'type');
        return [k instanceof CryptoKey, Object.prototype.toString.call(k), k.type, k.extractable, k.algorithm, k.usages,
          k.algorithm === k.algorithm, k.usages === k.usages, Object.keys(k), [d.writable, d.enumerable, d.configurable],
          JSON.stringify(k), Object.getOwnPropertyNames(CryptoKey.prototype)]`),
    ).toEqual([
      true, '[object CryptoKey]', 'secret', true, { name: 'HMAC', hash: { name: 'SHA-256' }, length: 512 }, ['sign', 'verify'], true, true,
      ['usages', 'algorithm', 'extractable', 'type'], [false, true, true],
      '{"usages":["sign","verify"],"algorithm":{"name":"HMAC","hash":{"name":"SHA-256"},"length":512},"extractable":true,"type":"secret"}',
      ['constructor'],
    ]);
  });

  it('rejects (never throws) on bad arguments, like workerd', async () => {
    expect(
      await run(`const p = s.sign('HMAC', 5, new Uint8Array(1)); const r = await attempt(() => p);
        return [p instanceof Promise, r.name, r.message, (await attempt(() => s.digest('SHA-256'))).name, (await attempt(() => s.digest('SHA-256', 'text'))).name,
          (await attempt(() => s.sign.call({}, 'HMAC', 5, new Uint8Array(1)))).message]`),
    ).toEqual([true, 'TypeError', "Failed to execute 'sign' on 'SubtleCrypto': parameter 2 is not of type 'CryptoKey'.", 'TypeError', 'TypeError', 'Illegal invocation']);
  });
});

describe('digest', () => {
  it('matches node:crypto for SHA-1/256/384/512 and MD5, on views and buffers', async () => {
    const data = 'The quick brown fox jumps over the lazy dog';
    const got = await run<string[]>(`const d = enc(${JSON.stringify(data)}); const padded = new Uint8Array(d.length + 8); padded.set(d, 4);
      const view = padded.subarray(4, 4 + d.length);
      return Promise.all([['SHA-1', d], ['sha-256', view], [{ name: 'SHA-384' }, d.buffer], ['SHA-512', new DataView(padded.buffer, 4, d.length)], ['MD5', d]]
        .map(async ([a, x]) => hex(await s.digest(a, x))))`);
    expect(got).toEqual(['sha1', 'sha256', 'sha384', 'sha512', 'md5'].map((h) => crypto.createHash(h).update(data).digest('hex')));
  });

  it('copies the data when called', async () => {
    expect(await run(`const d = enc('abc'); const p = s.digest('SHA-256', d); d.fill(0); return hex(await p)`)).toBe(crypto.createHash('sha256').update('abc').digest('hex'));
  });

  it('refuses unknown and nameless algorithms with NotSupportedError (as workerd)', async () => {
    expect(await run(`return [await attempt(() => s.digest('SHA-3', enc('x'))), (await attempt(() => s.digest({}, enc('x')))).name,
      (await attempt(() => s.generateKey({ name: 'HMAC', hash: {} }, true, ['sign']))).name]`)).toEqual([
      { name: 'NotSupportedError', dom: true, code: 9, message: expect.any(String) },
      'NotSupportedError',
      'NotSupportedError',
    ]);
  });
});

describe('HMAC', () => {
  it('signs in the guest what node:crypto computes, and imports a host key', async () => {
    const secret = crypto.randomBytes(32);
    const got = await run<[string, string, boolean, boolean, object]>(`
      const k = await s.generateKey({ name: 'HMAC', hash: 'SHA-384' }, true, ['sign', 'verify']);
      const sig = await s.sign('HMAC', k, enc('message'));
      const imported = await s.importKey('raw', unhex('${secret.toString('hex')}'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
      const sig2 = await s.sign({ name: 'HMAC' }, imported, enc('message'));
      return [hex(await s.exportKey('raw', k)) + ':' + hex(sig), hex(sig2), await s.verify('HMAC', imported, sig2, enc('message')),
        await s.verify('HMAC', imported, sig2, enc('other')), imported.algorithm]`);
    const [key, sig] = got[0].split(':');
    expect(sig).toBe(crypto.createHmac('sha384', buf(key)).update('message').digest('hex'));
    expect(got[1]).toBe(crypto.createHmac('sha256', secret).update('message').digest('hex'));
    expect(got.slice(2)).toEqual([true, false, { name: 'HMAC', hash: { name: 'SHA-256' }, length: 256 }]);
  });
});

describe('RSA', () => {
  it('RSASSA-PKCS1-v1_5: guest signatures verify in node:crypto; node pkcs8 keys sign in the guest', async () => {
    const pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pkcs8 = pair.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('hex');
    const [spki, sig, sig2, alg] = await run<[string, string, string, object]>(`
      const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) };
      const { publicKey, privateKey } = await s.generateKey(alg, true, ['sign', 'verify']);
      const sig = await s.sign('RSASSA-PKCS1-v1_5', privateKey, enc('payload'));
      const host = await s.importKey('pkcs8', unhex('${pkcs8}'), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512' }, false, ['sign']);
      const sig2 = await s.sign('RSASSA-PKCS1-v1_5', host, enc('payload'));
      return [hex(await s.exportKey('spki', publicKey)), hex(sig), hex(sig2), publicKey.algorithm]`);
    const pub = crypto.createPublicKey({ key: buf(spki), format: 'der', type: 'spki' });
    expect(crypto.verify('sha256', Buffer.from('payload'), pub, buf(sig))).toBe(true);
    expect(crypto.verify('sha512', Buffer.from('payload'), pair.publicKey, buf(sig2))).toBe(true);
    expect(alg).toEqual({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: { name: 'SHA-256' } });
  });

  it('RSA-PSS: a JWK exported in the guest imports in Node and verifies; Node signatures verify in the guest', async () => {
    const [jwk, sig] = await run<[webcrypto.JsonWebKey, string]>(`
      const { publicKey, privateKey } = await s.generateKey({ name: 'RSA-PSS', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['sign', 'verify']);
      globalThis.pssPrivate = privateKey; globalThis.pssPublic = publicKey;
      return [await s.exportKey('jwk', publicKey), hex(await s.sign({ name: 'RSA-PSS', saltLength: 32 }, privateKey, enc('pss')))]`);
    expect(jwk).toMatchObject({ kty: 'RSA', alg: 'PS256', e: 'AQAB', ext: true, key_ops: ['verify'] });
    const pub = await subtle.importKey('jwk', jwk, { name: 'RSA-PSS', hash: 'SHA-256' }, false, ['verify']);
    expect(await subtle.verify({ name: 'RSA-PSS', saltLength: 32 }, pub, buf(sig), Buffer.from('pss'))).toBe(true);
    // And the other way: Node signs with the guest's private key (exported as pkcs8).
    const pkcs8 = await run<string>(`return hex(await s.exportKey('pkcs8', pssPrivate))`);
    const priv = await subtle.importKey('pkcs8', buf(pkcs8), { name: 'RSA-PSS', hash: 'SHA-256' }, false, ['sign']);
    const hostSig = hex(await subtle.sign({ name: 'RSA-PSS', saltLength: 20 }, priv, Buffer.from('from node')));
    expect(await run(`return [await s.verify({ name: 'RSA-PSS', saltLength: 20 }, pssPublic, unhex('${hostSig}'), enc('from node')),
      await s.verify({ name: 'RSA-PSS', saltLength: 20 }, pssPublic, unhex('${hostSig}'), enc('tampered'))]`)).toEqual([true, false]);
  });

  it('RSA-OAEP: node encrypts to the guest public key, the guest decrypts (with a label)', async () => {
    const spki = await run<string>(`
      const { publicKey, privateKey } = await s.generateKey({ name: 'RSA-OAEP', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, false, ['encrypt', 'decrypt']);
      globalThis.oaepPrivate = privateKey; globalThis.oaepPublic = publicKey;
      return hex(await s.exportKey('spki', publicKey))`);
    const pub = await subtle.importKey('spki', buf(spki), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);
    const ct = hex(await subtle.encrypt({ name: 'RSA-OAEP', label: Buffer.from('L') }, pub, Buffer.from('secret message')));
    expect(
      await run(`return [new TextDecoder().decode(await s.decrypt({ name: 'RSA-OAEP', label: enc('L') }, oaepPrivate, unhex('${ct}'))),
        await attempt(() => s.decrypt({ name: 'RSA-OAEP', label: enc('M') }, oaepPrivate, unhex('${ct}'))),
        await attempt(() => s.exportKey('pkcs8', oaepPrivate))]`),
    ).toEqual([
      'secret message',
      { name: 'OperationError', dom: true, code: 0, message: expect.any(String) },
      { name: 'InvalidAccessError', dom: true, code: 15, message: expect.any(String) },
    ]);
    const ct2 = await run<string>(`return hex(await s.encrypt({ name: 'RSA-OAEP' }, oaepPublic, enc('to node')))`);
    expect(ct2).toHaveLength(512);
  });
});

describe('elliptic curves', () => {
  for (const curve of ['P-256', 'P-384'] as const) {
    const hash = curve === 'P-256' ? 'SHA-256' : 'SHA-384';
    it(`ECDSA ${curve}: signatures verify on the other side both ways`, async () => {
      const [raw, sig] = await run<[string, string]>(`
        const { publicKey, privateKey } = await s.generateKey({ name: 'ECDSA', namedCurve: '${curve}' }, true, ['sign', 'verify']);
        globalThis.ec = publicKey;
        return [hex(await s.exportKey('raw', publicKey)), hex(await s.sign({ name: 'ECDSA', hash: '${hash}' }, privateKey, enc('ec data')))]`);
      const pub = await subtle.importKey('raw', buf(raw), { name: 'ECDSA', namedCurve: curve }, false, ['verify']);
      expect(await subtle.verify({ name: 'ECDSA', hash }, pub, buf(sig), Buffer.from('ec data'))).toBe(true);
      const host = await subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify']);
      const jwk = await subtle.exportKey('jwk', host.publicKey);
      const hostSig = hex(await subtle.sign({ name: 'ECDSA', hash }, host.privateKey, Buffer.from('from node')));
      expect(
        await run(`const k = await s.importKey('jwk', ${JSON.stringify(jwk)}, { name: 'ECDSA', namedCurve: '${curve}' }, true, ['verify']);
          return [await s.verify({ name: 'ECDSA', hash: '${hash}' }, k, unhex('${hostSig}'), enc('from node')), k.algorithm, k.type]`),
      ).toEqual([true, { name: 'ECDSA', namedCurve: curve }, 'public']);
    });

    it(`ECDH ${curve}: both sides derive the same secret and key`, async () => {
      const host = await subtle.generateKey({ name: 'ECDH', namedCurve: curve }, true, ['deriveBits']);
      const hostRaw = hex(await subtle.exportKey('raw', host.publicKey));
      const [guestRaw, bits, aesKey] = await run<[string, string, string]>(`
        const mine = await s.generateKey({ name: 'ECDH', namedCurve: '${curve}' }, true, ['deriveBits', 'deriveKey']);
        const theirs = await s.importKey('raw', unhex('${hostRaw}'), { name: 'ECDH', namedCurve: '${curve}' }, true, []);
        const bits = await s.deriveBits({ name: 'ECDH', public: theirs }, mine.privateKey, 256);
        const aes = await s.deriveKey({ name: 'ECDH', public: theirs }, mine.privateKey, { name: 'AES-GCM', length: 256 }, true, ['encrypt']);
        return [hex(await s.exportKey('raw', mine.publicKey)), hex(bits), hex(await s.exportKey('raw', aes))]`);
      const guestPub = await subtle.importKey('raw', buf(guestRaw), { name: 'ECDH', namedCurve: curve }, true, []);
      const hostBits = hex(await subtle.deriveBits({ name: 'ECDH', public: guestPub }, host.privateKey, 256));
      expect(bits).toBe(hostBits);
      expect(aesKey).toBe(hostBits);
    });
  }

  it('Ed25519 (and NODE-ED25519): guest signatures verify in node:crypto; node keys import in the guest', async () => {
    const [spki, sig, legacyAlg, legacySig, legacyRaw] = await run<[string, string, object, string, string]>(`
      const { publicKey, privateKey } = await s.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
      const legacy = await s.generateKey({ name: 'NODE-ED25519', namedCurve: 'NODE-ED25519' }, true, ['sign', 'verify']);
      const legacySig = await s.sign({ name: 'NODE-ED25519' }, legacy.privateKey, enc('legacy'));
      return [hex(await s.exportKey('spki', publicKey)), hex(await s.sign('Ed25519', privateKey, enc('ed'))), legacy.publicKey.algorithm, hex(legacySig),
        hex(await s.exportKey('raw', legacy.publicKey))]`);
    const pub = crypto.createPublicKey({ key: buf(spki), format: 'der', type: 'spki' });
    expect(crypto.verify(null, Buffer.from('ed'), pub, buf(sig))).toBe(true);
    expect(legacyAlg).toEqual({ name: 'NODE-ED25519', namedCurve: 'NODE-ED25519' });
    const legacyPub = await subtle.importKey('raw', buf(legacyRaw), 'Ed25519', false, ['verify']);
    expect(await subtle.verify('Ed25519', legacyPub, buf(legacySig), Buffer.from('legacy'))).toBe(true);
    const pair = crypto.generateKeyPairSync('ed25519');
    const jwk = pair.privateKey.export({ format: 'jwk' });
    const nodeSig = crypto.sign(null, Buffer.from('node'), pair.privateKey).toString('hex');
    const pubJwk = { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
    expect(
      await run(`const priv = await s.importKey('jwk', ${JSON.stringify(jwk)}, 'Ed25519', false, ['sign']);
        const pub = await s.importKey('jwk', ${JSON.stringify(pubJwk)}, { name: 'Ed25519' }, true, ['verify']);
        return [await s.verify('Ed25519', pub, unhex('${nodeSig}'), enc('node')), hex(await s.sign('Ed25519', priv, enc('node')))]`),
    ).toEqual([true, nodeSig]); // Ed25519 signatures are deterministic
  });

  it('refuses Ed448 and X448 as workerd does; supports X25519', async () => {
    expect(
      await run(`return [(await attempt(() => s.generateKey({ name: 'Ed448' }, true, ['sign']))).name,
        (await attempt(() => s.generateKey('X448', true, ['deriveBits']))).name,
        (await s.generateKey({ name: 'X25519' }, true, ['deriveBits'])).privateKey.algorithm]`),
    ).toEqual(['NotSupportedError', 'NotSupportedError', { name: 'X25519' }]);
  });
});

describe('AES', () => {
  const key = crypto.randomBytes(32);
  const iv = crypto.randomBytes(16);
  const plain = 'attack at dawn, and bring snacks for everyone';

  it('AES-GCM, AES-CBC and AES-CTR ciphertexts from the guest decrypt in node:crypto', async () => {
    const [gcm, cbc, ctr] = await run<string[]>(`
      const raw = unhex('${key.toString('hex')}'), iv = unhex('${iv.toString('hex')}'), data = enc(${JSON.stringify(plain)});
      const gcm = await s.importKey('raw', raw, 'AES-GCM', false, ['encrypt']);
      const cbc = await s.importKey('raw', raw, { name: 'AES-CBC' }, false, ['encrypt']);
      const ctr = await s.importKey('raw', raw, { name: 'AES-CTR' }, false, ['encrypt']);
      return [hex(await s.encrypt({ name: 'AES-GCM', iv: iv.subarray(0, 12), additionalData: enc('aad') }, gcm, data)),
        hex(await s.encrypt({ name: 'AES-CBC', iv }, cbc, data)), hex(await s.encrypt({ name: 'AES-CTR', counter: iv, length: 64 }, ctr, data))]`);
    const g = buf(gcm);
    const d = crypto.createDecipheriv('aes-256-gcm', key, iv.subarray(0, 12));
    d.setAAD(Buffer.from('aad'));
    d.setAuthTag(g.subarray(g.length - 16));
    expect(Buffer.concat([d.update(g.subarray(0, g.length - 16)), d.final()]).toString()).toBe(plain);
    const c = crypto.createDecipheriv('aes-256-cbc', key, iv);
    expect(Buffer.concat([c.update(buf(cbc)), c.final()]).toString()).toBe(plain);
    const t = crypto.createDecipheriv('aes-256-ctr', key, iv);
    expect(Buffer.concat([t.update(buf(ctr)), t.final()]).toString()).toBe(plain);
  });

  it('decrypts node:crypto AES-GCM and fails a tampered tag with OperationError', async () => {
    const nonce = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', key, nonce);
    const ct = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
    const bad = Buffer.from(ct);
    bad[bad.length - 1] ^= 1;
    expect(
      await run(`const k = await s.importKey('raw', unhex('${key.toString('hex')}'), 'AES-GCM', false, ['decrypt']);
        return [new TextDecoder().decode(await s.decrypt({ name: 'AES-GCM', iv: unhex('${nonce.toString('hex')}') }, k, unhex('${ct.toString('hex')}'))),
          (await attempt(() => s.decrypt({ name: 'AES-GCM', iv: unhex('${nonce.toString('hex')}') }, k, unhex('${bad.toString('hex')}')))).name]`),
    ).toEqual([plain, 'OperationError']);
  });

  it('AES-KW wraps a key that Node unwraps; wrapKey/unwrapKey jwk round trip in the guest', async () => {
    const [kek, wrapped, roundTrip] = await run<[string, string, object]>(`
      const kek = await s.generateKey({ name: 'AES-KW', length: 128 }, true, ['wrapKey', 'unwrapKey']);
      const hmac = await s.importKey('raw', unhex('${'ab'.repeat(32)}'), { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
      const wrapped = await s.wrapKey('raw', hmac, kek, 'AES-KW');
      const gcm = await s.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey']);
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const wrappedJwk = await s.wrapKey('jwk', hmac, gcm, { name: 'AES-GCM', iv });
      const back = await s.unwrapKey('jwk', wrappedJwk, gcm, { name: 'AES-GCM', iv }, { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
      return [hex(await s.exportKey('raw', kek)), hex(wrapped), { alg: back.algorithm, raw: hex(await s.exportKey('raw', back)) }]`);
    const kekKey = await subtle.importKey('raw', buf(kek), 'AES-KW', false, ['unwrapKey']);
    const unwrapped = await subtle.unwrapKey('raw', buf(wrapped), kekKey, 'AES-KW', { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
    expect(hex(await subtle.exportKey('raw', unwrapped))).toBe('ab'.repeat(32));
    expect(roundTrip).toEqual({ alg: { name: 'HMAC', hash: { name: 'SHA-256' }, length: 256 }, raw: 'ab'.repeat(32) });
  });

  it('refuses bad key lengths (DataError), empty usages (SyntaxError) and wrong usages (InvalidAccessError)', async () => {
    expect(
      await run(`const k = await s.importKey('raw', new Uint8Array(16), 'AES-GCM', false, ['encrypt']);
        return [(await attempt(() => s.importKey('raw', new Uint8Array(3), 'AES-GCM', true, ['encrypt']))).name,
          (await attempt(() => s.generateKey({ name: 'AES-GCM', length: 128 }, true, []))).name,
          (await attempt(() => s.decrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, k, new Uint8Array(32)))).name,
          (await attempt(() => s.importKey('raw', new Uint8Array(16), 'AES-GCM', true, ['sign']))).name,
          (await attempt(() => s.importKey('raw', new Uint8Array(16), { name: 'AES-GCM', length: 128 }, true, 'encrypt'))).name]`),
    ).toEqual(['DataError', 'SyntaxError', 'InvalidAccessError', 'SyntaxError', 'TypeError']);
  });
});

describe('workerd conventions', () => {
  it('lists usages in KeyUsage order, once each, in keys and exported key_ops', async () => {
    expect(
      await run(`const k = await s.generateKey({ name: 'AES-GCM', length: 128 }, true, ['unwrapKey', 'decrypt', 'encrypt', 'encrypt']);
        const p = await s.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits', 'deriveKey']);
        return [k.usages, (await s.exportKey('jwk', k)).key_ops, p.privateKey.usages]`),
    ).toEqual([['encrypt', 'decrypt', 'unwrapKey'], ['encrypt', 'decrypt', 'unwrapKey'], ['deriveKey', 'deriveBits']]);
  });

  it('writes JWKs in workerd member order, with alg EdDSA for Ed25519 and none for NODE-ED25519', async () => {
    expect(
      await run(`const h = await s.importKey('raw', new Uint8Array(16), { name: 'HMAC', hash: 'SHA-256' }, true, ['verify', 'sign']);
        const ec = await s.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
        const ed = await s.generateKey('Ed25519', true, ['sign', 'verify']);
        const legacy = await s.generateKey({ name: 'NODE-ED25519', namedCurve: 'NODE-ED25519' }, true, ['sign', 'verify']);
        const edJwk = await s.exportKey('jwk', ed.privateKey);
        return [Object.keys(await s.exportKey('jwk', h)), Object.keys(await s.exportKey('jwk', ec.privateKey)), Object.keys(edJwk), edJwk.alg,
          Object.keys(await s.exportKey('jwk', legacy.publicKey))]`),
    ).toEqual([
      ['kty', 'key_ops', 'alg', 'ext', 'k'],
      ['kty', 'key_ops', 'ext', 'crv', 'x', 'y', 'd'],
      ['kty', 'key_ops', 'alg', 'ext', 'crv', 'x', 'd'],
      'EdDSA',
      ['kty', 'key_ops', 'ext', 'crv', 'x'],
    ]);
  });

  it('answers an unknown key format with NotSupportedError and an unknown usage with SyntaxError', async () => {
    expect(
      await run(`const h = await s.importKey('raw', new Uint8Array(16), { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
        return [(await attempt(() => s.exportKey('bogus', h))).name, (await attempt(() => s.importKey('pem', new Uint8Array(16), 'AES-GCM', true, ['encrypt']))).name,
          (await attempt(() => s.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign', 'bogus']))).name,
          (await attempt(() => s.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, 'sign'))).name,
          (await attempt(() => s.importKey('jwk', new Uint8Array(16), 'AES-GCM', true, ['encrypt']))).name]`),
    ).toEqual(['NotSupportedError', 'NotSupportedError', 'SyntaxError', 'TypeError', 'TypeError']);
  });
});

describe('host cost bounds', () => {
  it('limits RSA key generation as workerd does and PBKDF2 iterations as Cloudflare does', async () => {
    expect(
      await run(`const rsa = (modulusLength, e) => s.generateKey({ name: 'RSA-PSS', hash: 'SHA-256', modulusLength, publicExponent: new Uint8Array(e) }, true, ['sign']);
        const pw = await s.importKey('raw', enc('pw'), 'PBKDF2', false, ['deriveBits', 'deriveKey']);
        const pbkdf2 = (iterations) => s.deriveBits({ name: 'PBKDF2', salt: enc('salt'), iterations, hash: 'SHA-256' }, pw, 128);
        return [(await attempt(() => rsa(1024, [7]))).name, (await attempt(() => rsa(1000, [1, 0, 1]))).name, (await attempt(() => rsa(32768, [1, 0, 1]))).name,
          (await attempt(() => pbkdf2(100001))).name, (await attempt(() => s.deriveKey({ name: 'PBKDF2', salt: enc('s'), iterations: 1e6, hash: 'SHA-256' }, pw, { name: 'AES-GCM', length: 128 }, true, ['encrypt']))).name,
          (await pbkdf2(100000)).byteLength]`),
    ).toEqual(['OperationError', 'OperationError', 'OperationError', 'NotSupportedError', 'NotSupportedError', 16]);
  });

  it('limits PBKDF2 by its whole work: output blocks times iterations (each block is the count again)', async () => {
    const [huge, hmacKey, many, fine] = await run<[{ name: string; message: string }, { name: string }, number, number]>(`
      const pw = await s.importKey('raw', enc('pw'), 'PBKDF2', false, ['deriveBits', 'deriveKey']);
      const bits = (iterations, length) => s.deriveBits({ name: 'PBKDF2', salt: enc('salt'), iterations, hash: 'SHA-256' }, pw, length);
      return [
        await attempt(() => bits(100000, 8 * 1000000)),
        await attempt(() => s.deriveKey({ name: 'PBKDF2', salt: enc('s'), iterations: 100000, hash: 'SHA-1' }, pw, { name: 'HMAC', hash: 'SHA-512', length: 8 * 65536 }, true, ['sign'])),
        (await bits(1000, 8 * 2048)).byteLength,
        (await bits(10, 8 * 4096)).byteLength,
      ]`);
    expect(huge.name).toBe('NotSupportedError');
    expect(huge.message).toMatch(/8000000 bits at 100000 iterations is 31250 blocks of SHA-256, over this server's limit of 8 blocks at 100000 iterations/);
    expect(hmacKey.name).toBe('NotSupportedError');
    expect([many, fine]).toEqual([2048, 4096]);
  });
});

describe('key derivation', () => {
  it('PBKDF2 and HKDF bits match node:crypto; deriveKey makes a usable key', async () => {
    const [pbkdf2, hkdf, hmacAlg] = await run<[string, string, object]>(`
      const pw = await s.importKey('raw', enc('hunter2'), 'PBKDF2', false, ['deriveBits', 'deriveKey']);
      const pbkdf2 = await s.deriveBits({ name: 'PBKDF2', salt: enc('salt'), iterations: 1000, hash: 'SHA-256' }, pw, 256);
      const ikm = await s.importKey('raw', enc('input key material'), { name: 'HKDF' }, false, ['deriveBits', 'deriveKey']);
      const hkdf = await s.deriveBits({ name: 'HKDF', salt: enc('s'), info: enc('i'), hash: 'SHA-384' }, ikm, 384);
      const k = await s.deriveKey({ name: 'HKDF', salt: enc('s'), info: enc('i'), hash: 'SHA-256' }, ikm, { name: 'HMAC', hash: 'SHA-256', length: 256 }, false, ['sign']);
      await s.sign('HMAC', k, enc('x'));
      return [hex(pbkdf2), hex(hkdf), k.algorithm]`);
    expect(pbkdf2).toBe(crypto.pbkdf2Sync('hunter2', 'salt', 1000, 32, 'sha256').toString('hex'));
    expect(hkdf).toBe(hex(crypto.hkdfSync('sha384', 'input key material', 's', 'i', 48)));
    expect(hmacAlg).toEqual({ name: 'HMAC', hash: { name: 'SHA-256' }, length: 256 });
  });
});

describe('workerd extras', () => {
  it('timingSafeEqual compares equal-length BufferSources', async () => {
    expect(
      await run(`return [s.timingSafeEqual(enc('abc'), enc('abc')), s.timingSafeEqual(enc('abc').buffer, enc('abd')),
        (await attempt(() => s.timingSafeEqual(enc('ab'), enc('abc')))).message, (await attempt(() => s.timingSafeEqual('ab', 'ab'))).name]`),
    ).toEqual([true, false, 'Input buffers must have the same byte length.', 'TypeError']);
  });

  it('DigestStream hashes strings and bytes written to it, large writes included', async () => {
    const big = 'x'.repeat(200_000);
    const [digest, written, md5] = await run<[string, string, string]>(`
      const ds = new crypto.DigestStream('SHA-256'); const w = ds.getWriter();
      await w.write(enc('abc')); await w.write('def'); await w.write('x'.repeat(200000)); await w.write(new Uint8Array(0)); await w.close();
      const m = new crypto.DigestStream({ name: 'MD5' }); await new Response('hello').body.pipeTo(m);
      return [hex(await ds.digest), typeof ds.bytesWritten + ':' + ds.bytesWritten, hex(await m.digest)]`);
    expect(digest).toBe(crypto.createHash('sha256').update('abcdef' + big).digest('hex'));
    expect(written).toBe(`bigint:${6 + big.length}`);
    expect(md5).toBe(crypto.createHash('md5').update('hello').digest('hex'));
    expect(await run(`return [(await attempt(() => new crypto.DigestStream('SHA-3'))).name, (await attempt(() => new crypto.DigestStream())).name]`)).toEqual([
      'NotSupportedError',
      'TypeError',
    ]);
  });

  it('DigestStream buffers small writes across its host flushes', async () => {
    const got = await run<string>(`const ds = new crypto.DigestStream('SHA-512'); const w = ds.getWriter(); const chunk = new Uint8Array(1000);
      for (let i = 0; i < 300; i++) { chunk.fill(i & 255); await w.write(chunk); }
      await w.write(new Uint8Array(70000).subarray(1, 69001)); await w.close(); return hex(await ds.digest)`);
    const h = crypto.createHash('sha512');
    for (let i = 0; i < 300; i++) h.update(Buffer.alloc(1000, i & 255));
    h.update(Buffer.alloc(69000));
    expect(got).toBe(h.digest('hex'));
  });

  it('DigestStream rejects digest on abort', async () => {
    expect(await run(`const ds = new crypto.DigestStream('SHA-1'); const w = ds.getWriter(); await w.write('a'); await w.abort(new Error('stop'));
      return (await attempt(() => ds.digest)).message`)).toBe('stop');
  });
});

describe('key lifetime', () => {
  it('frees the host key when the guest key is collected', async () => {
    const state = opState.get('crypto');
    const before = liveKeys(state);
    // Held while they are counted: V8 may collect unreferenced keys while the loop still runs.
    await run(`globalThis.heldKeys = []; for (let i = 0; i < 200; i++) heldKeys.push(await s.importKey('raw', new Uint8Array(16), 'AES-GCM', false, ['encrypt']));`);
    expect(liveKeys(opState.get('crypto'))).toBeGreaterThanOrEqual(before + 200);
    await run(`globalThis.heldKeys = null;`);
    let after = Infinity;
    for (let i = 0; i < 20 && after > before + 100; i++) {
      // Churn the guest heap so V8 collects the dropped keys; the next call carries their handles.
      await run(`let junk = []; for (let j = 0; j < 200000; j++) junk.push({ j }); junk = null; await new Promise((r) => setTimeout(r, 5)); await s.digest('SHA-1', new Uint8Array(1));`);
      after = liveKeys(opState.get('crypto'));
    }
    expect(after).toBeLessThan(before + 100);
  });
});
