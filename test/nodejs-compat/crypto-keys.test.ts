// node:crypto's asymmetric half (keys, signatures, RSA encryption, key agreement, scrypt) used by a
// served worker, each result checked against the test runner's own Node crypto in both directions:
// keys and signatures made in the worker verify here, and keys and signatures made here are read
// and verified in the worker (PEM, DER and JWK).
import * as crypto from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { bundleWorker } from './helpers.js';

const compat = { compatibilityDate: '2025-05-01', compatibilityFlags: ['nodejs_compat'] };

// Each route takes a JSON body and answers JSON; Buffers travel as base64.
const worker = `import * as crypto from 'node:crypto';
import { Buffer } from 'node:buffer';
import { types } from 'node:util';
import { promisify } from 'node:util';
const b64 = (b) => Buffer.from(b).toString('base64');
const routes = {
  // keys the worker makes, exported every way, with a signature over "message" by each
  generate({ type, options, algorithm }) {
    const { publicKey, privateKey } = crypto.generateKeyPairSync(type, options);
    const data = Buffer.from('message');
    const signature = crypto.sign(algorithm, data, privateKey);
    const out = {
      type: [publicKey.type, privateKey.type], asymmetricKeyType: privateKey.asymmetricKeyType,
      details: JSON.parse(JSON.stringify(publicKey.asymmetricKeyDetails, (k, v) => typeof v === 'bigint' ? Number(v) : v)),
      spkiPem: publicKey.export({ type: 'spki', format: 'pem' }), spkiDer: b64(publicKey.export({ type: 'spki', format: 'der' })),
      pkcs8Pem: privateKey.export({ type: 'pkcs8', format: 'pem' }), pkcs8Der: b64(privateKey.export({ type: 'pkcs8', format: 'der' })),
      publicJwk: publicKey.export({ format: 'jwk' }), privateJwk: privateKey.export({ format: 'jwk' }),
      signature: b64(signature), selfVerify: crypto.verify(algorithm, data, publicKey, signature),
      isKeyObject: types.isKeyObject(publicKey), instance: publicKey instanceof crypto.KeyObject,
      equalsSelf: publicKey.equals(crypto.createPublicKey(publicKey.export({ type: 'spki', format: 'pem' }))),
      equalsOther: publicKey.equals(crypto.generateKeyPairSync(type, options).publicKey),
      derived: crypto.createPublicKey(privateKey).equals(publicKey),
    };
    if (type === 'rsa') {
      out.pkcs1Pem = privateKey.export({ type: 'pkcs1', format: 'pem' });
      out.pkcs1Public = publicKey.export({ type: 'pkcs1', format: 'pem' });
    }
    if (type === 'ec') out.sec1Pem = privateKey.export({ type: 'sec1', format: 'pem' });
    return out;
  },
  generateNoJwk({ namedCurve }) {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve });
    const jwk = (() => { try { privateKey.export({ format: 'jwk' }); return 'exported'; } catch (e) { return [e.code, e.message]; } })();
    return { pkcs8Pem: privateKey.export({ type: 'pkcs8', format: 'pem' }), sec1Pem: privateKey.export({ type: 'sec1', format: 'pem' }), spkiPem: publicKey.export({ type: 'spki', format: 'pem' }), signature: b64(crypto.sign('sha224', Buffer.from('message'), privateKey)), jwk };
  },
  // signatures by keys the runner made: each form the key can come in
  signWith({ key, format, type, algorithm, padding, saltLength, dsaEncoding, streamed }) {
    const input = format === 'der' ? { key: Buffer.from(key, 'base64'), format, type } : format === 'jwk' ? { key, format } : key;
    const options = typeof input === 'string' ? { key: input } : { ...input };
    if (padding !== undefined) options.padding = padding;
    if (saltLength !== undefined) options.saltLength = saltLength;
    if (dsaEncoding !== undefined) options.dsaEncoding = dsaEncoding;
    if (streamed) {
      const signer = crypto.createSign(algorithm);
      signer.update('mess'); signer.update(Buffer.from('age'));
      return { signature: signer.sign(options, 'base64') };
    }
    return { signature: b64(crypto.sign(algorithm, Buffer.from('message'), options)) };
  },
  verifyWith({ key, format, type, algorithm, signature, padding, saltLength, dsaEncoding }) {
    const input = format === 'der' ? { key: Buffer.from(key, 'base64'), format, type } : format === 'jwk' ? { key, format } : key;
    const options = typeof input === 'string' ? { key: input } : { ...input };
    if (padding !== undefined) options.padding = padding;
    if (saltLength !== undefined) options.saltLength = saltLength;
    if (dsaEncoding !== undefined) options.dsaEncoding = dsaEncoding;
    const sig = Buffer.from(signature, 'base64');
    const verifier = crypto.createVerify(algorithm ?? 'sha256'); verifier.update('message');
    return {
      oneShot: crypto.verify(algorithm, Buffer.from('message'), options, sig),
      tampered: crypto.verify(algorithm, Buffer.from('messagE'), options, sig),
      streamed: algorithm === null ? null : verifier.verify(options, sig),
    };
  },
  importExport({ pem, publicPem }) {
    const key = crypto.createPrivateKey(pem);
    const pub = crypto.createPublicKey(publicPem);
    return {
      pkcs8: key.export({ type: 'pkcs8', format: 'pem' }), spki: pub.export({ type: 'spki', format: 'pem' }),
      jwk: key.export({ format: 'jwk' }), fromJwk: crypto.createPrivateKey({ key: key.export({ format: 'jwk' }), format: 'jwk' }).equals(key),
      pubFromJwk: crypto.createPublicKey({ key: pub.export({ format: 'jwk' }), format: 'jwk' }).equals(pub),
    };
  },
  async primes({ known, composite }) {
    return {
      plain: String(crypto.generatePrimeSync(64, { bigint: true })), safe: String(crypto.generatePrimeSync(48, { safe: true, bigint: true })),
      buffer: Buffer.from(crypto.generatePrimeSync(20)).toString('hex'), progression: String(crypto.generatePrimeSync(40, { add: 12n, rem: 11n, bigint: true })), small: String(crypto.generatePrimeSync(3, { bigint: true })),
      async: String(await promisify(crypto.generatePrime)(128, { bigint: true })),
      known: crypto.checkPrimeSync(BigInt(known)), composite: crypto.checkPrimeSync(Buffer.from(composite, 'hex')),
      asyncCheck: await promisify(crypto.checkPrime)(BigInt(known)),
    };
  },
  certificate({ pem }) {
    return { spki: crypto.createPublicKey(pem).export({ type: 'spki', format: 'pem' }) };
  },
  encrypt({ publicPem, privatePem, ciphertext, oaepHash, padding }) {
    const options = (key) => ({ key, ...(oaepHash ? { oaepHash } : {}), ...(padding ? { padding } : {}) });
    return {
      decrypted: crypto.privateDecrypt(options(privatePem), Buffer.from(ciphertext, 'base64')).toString(),
      encrypted: b64(crypto.publicEncrypt(options(publicPem), Buffer.from('to the runner'))),
      signedRaw: b64(crypto.privateEncrypt(privatePem, Buffer.from('raw'))),
      badOaep: (() => { try { crypto.privateDecrypt(options(privatePem), Buffer.alloc(Buffer.from(ciphertext, 'base64').length, 1)); return 'accepted'; } catch (e) { return e.code; } })(),
    };
  },
  agree({ curve, peerPublic, x25519Peer }) {
    const ecdh = crypto.createECDH(curve);
    const mine = ecdh.generateKeys('base64');
    const secret = ecdh.computeSecret(peerPublic, 'base64', 'base64');
    const { publicKey, privateKey } = crypto.generateKeyPairSync('x25519');
    const peer = crypto.createPublicKey({ key: Buffer.from(x25519Peer, 'base64'), format: 'der', type: 'spki' });
    return {
      mine, secret, compressed: ecdh.getPublicKey('hex', 'compressed'),
      x25519Public: b64(publicKey.export({ type: 'spki', format: 'der' })), x25519Secret: b64(crypto.diffieHellman({ privateKey, publicKey: peer })),
      badCurve: (() => { try { crypto.createECDH('secp256k1'); return 'accepted'; } catch (e) { return e.message; } })(),
    };
  },
  modp({ peer }) {
    const dh = crypto.getDiffieHellman('modp14');
    const mine = dh.generateKeys('base64');
    const small = (() => { try { crypto.getDiffieHellman('modp2'); return 'accepted'; } catch (e) { return e.message; } })();
    const own = crypto.createDiffieHellman(Buffer.from('17', 'hex'));
    return { prime: dh.getPrime('hex'), generator: dh.getGenerator('hex'), mine, secret: dh.computeSecret(peer, 'base64', 'base64'), primes: ['modp15', 'modp16', 'modp17', 'modp18'].map((g) => crypto.getDiffieHellman(g).getPrime('hex')), small, verifyErrors: [dh.verifyError, own.verifyError, crypto.createDiffieHellman(Buffer.from('15', 'hex')).verifyError] };
  },
  async scrypt({ password, salt, options }) {
    const sync = crypto.scryptSync(password, salt, 32, options).toString('hex');
    const async = await promisify(crypto.scrypt)(password, salt, 24);
    const tooMuch = (() => { try { crypto.scryptSync('a', 'b', 16, { N: 2 ** 20 }); return 'accepted'; } catch (e) { return e.name; } })();
    return { sync, async: async.toString('hex'), tooMuch };
  },
  secret() {
    const key = crypto.createSecretKey(Buffer.from('s3cret'));
    const made = crypto.generateKeySync('hmac', { length: 128 });
    return { type: key.type, size: key.symmetricKeySize, raw: key.export().toString(), jwk: key.export({ format: 'jwk' }), made: made.symmetricKeySize,
      hmac: crypto.createHmac('sha256', key.export()).update('x').digest('hex'), hmacWithKeyObject: crypto.createHmac('sha256', key).update('x').digest('hex'),
      aesWithKeyObject: (() => { const k = crypto.createSecretKey(Buffer.alloc(16, 1)); const c = crypto.createCipheriv('aes-128-cbc', k, Buffer.alloc(16)); return c.update('x', 'utf8', 'hex') + c.final('hex'); })() };
  },
  async asyncPair() {
    const pair = await promisify(crypto.generateKeyPair)('ec', { namedCurve: 'P-384', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const rsa = await new Promise((resolve, reject) => crypto.generateKeyPair('rsa', { modulusLength: 2048 }, (err, publicKey, privateKey) => err ? reject(err) : resolve({ publicKey, privateKey })));
    const sig = crypto.sign('sha256', Buffer.from('message'), rsa.privateKey);
    return { ecPublic: pair.publicKey, rsaPublic: rsa.publicKey.export({ type: 'spki', format: 'pem' }), rsaSig: b64(sig) };
  },
  // JWTs as jsonwebtoken/jws/jwa make them: createSign('RSA-SHA256') over "header.payload", the
  // signature base64url'd; ES256 as JOSE's r||s
  jwt({ privatePem, alg, token, publicPem }) {
    const enc = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const input = enc({ alg, typ: 'JWT' }) + '.' + enc({ sub: 'worker', iat: 1700000000 });
    const bits = alg.slice(2);
    const signer = crypto.createSign('RSA-SHA' + bits);
    signer.update(input);
    const signature = alg.startsWith('ES') ? signer.sign({ key: privatePem, dsaEncoding: 'ieee-p1363' }) : signer.sign(privatePem);
    const [h, p, sig] = token.split('.');
    const verifier = crypto.createVerify('RSA-SHA' + JSON.parse(Buffer.from(h, 'base64url')).alg.slice(2));
    verifier.update(h + '.' + p);
    const key = alg.startsWith('ES') ? { key: publicPem, dsaEncoding: 'ieee-p1363' } : publicPem;
    return { token: input + '.' + signature.toString('base64url'), verified: verifier.verify(key, Buffer.from(sig, 'base64url')), claims: JSON.parse(Buffer.from(p, 'base64url')) };
  },
  refusals() {
    const caught = (fn) => { try { fn(); return 'accepted'; } catch (e) { return [e.name, e.code ?? null, e.message]; } };
    return {
      rsa8192: caught(() => crypto.generateKeyPairSync('rsa', { modulusLength: 8192 })),
      ed448: caught(() => crypto.generateKeyPairSync('ed448')),
      encrypted: caught(() => crypto.createPrivateKey({ key: '-----BEGIN ENCRYPTED PRIVATE KEY-----\\nMIIB\\n-----END ENCRYPTED PRIVATE KEY-----\\n', passphrase: 'x' })),
      toCryptoKey: caught(() => crypto.createSecretKey(Buffer.alloc(16)).toCryptoKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign'])),
      garbage: caught(() => crypto.createPublicKey('not a key')),
      curves: crypto.getCurves(),
    };
  },
};
export default { async fetch(req) {
  const route = new URL(req.url).pathname.slice(1);
  try {
    return Response.json(await routes[route](await req.json()));
  } catch (e) {
    return Response.json({ error: e.name, code: e.code ?? null, message: e.message, stack: e.stack }, { status: 500 });
  }
} };`;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({
    k: { code: await bundleWorker(worker, import.meta.dirname), ...compat, limits: { cpuMs: 5_000 } },
    // the default CPU limit (50 ms): a 4096-bit key is seconds of BigInt work in the isolate
    keygen: { code: `import { generateKeyPairSync } from 'node:crypto';
      export default { fetch() { const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 4096 }); return new Response(String(publicKey.asymmetricKeyDetails.modulusLength)); } }`, ...compat },
    // PBKDF2 at 100,000 iterations through the callback form, under the default limit: on the host
    'pbkdf2-native': { code: `import { pbkdf2 } from 'node:crypto';
      export default { async fetch() {
        const key = await new Promise((resolve, reject) => pbkdf2('pw', 'salt', 100000, 32, 'sha256', (err, k) => (err ? reject(err) : resolve(k))));
        return new Response(key.toString('hex'));
      } }`, ...compat },
    // the asynchronous form of the same, under the same limit: made by Web Crypto on the host
    // Only the generation counts here: signing with a 4096-bit key in the guest is ~30 ms of
    // CPU on its own (most of the 50 ms default), so the pair is checked by the test instead.
    'async-keygen': { code: `import { generateKeyPair } from 'node:crypto';
      import { promisify } from 'node:util';
      export default { async fetch() {
        const { publicKey, privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 4096 });
        return Response.json({ bits: publicKey.asymmetricKeyDetails.modulusLength, publicKey: publicKey.export({ type: 'spki', format: 'pem' }), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) });
      } }`, ...compat },
  } as never);
}, 60_000);
afterAll(() => server?.close());

async function call(route: string, body: unknown = {}): Promise<Record<string, any>> {
  const res = await server.request('k', `/${route}`, { method: 'POST', body: JSON.stringify(body) });
  expect(res.status, res.text).toBe(200);
  return JSON.parse(res.text);
}

const message = Buffer.from('message');

describe('keys made in the worker', () => {
  it('RSA 2048: the runner reads its PEM/DER/JWK exports and verifies its PKCS#1 v1.5 signature', async () => {
    const out = await call('generate', { type: 'rsa', options: { modulusLength: 2048 }, algorithm: 'sha256' });
    expect(out).toMatchObject({ type: ['public', 'private'], asymmetricKeyType: 'rsa', details: { modulusLength: 2048, publicExponent: 65537 }, selfVerify: true, isKeyObject: true, instance: true, equalsSelf: true, equalsOther: false, derived: true });
    const pub = crypto.createPublicKey(out.spkiPem);
    expect(crypto.verify('sha256', message, pub, Buffer.from(out.signature, 'base64'))).toBe(true);
    const priv = crypto.createPrivateKey(out.pkcs8Pem);
    expect(priv.asymmetricKeyDetails).toEqual({ modulusLength: 2048, publicExponent: 65537n });
    // same bytes as Node writes for the same key, every format
    expect(priv.export({ type: 'pkcs8', format: 'pem' })).toBe(out.pkcs8Pem);
    expect(priv.export({ type: 'pkcs1', format: 'pem' })).toBe(out.pkcs1Pem);
    expect(pub.export({ type: 'pkcs1', format: 'pem' })).toBe(out.pkcs1Public);
    expect(pub.export({ type: 'spki', format: 'der' }).toString('base64')).toBe(out.spkiDer);
    expect(priv.export({ type: 'pkcs8', format: 'der' }).toString('base64')).toBe(out.pkcs8Der);
    expect(priv.export({ format: 'jwk' })).toEqual(out.privateJwk);
    expect(pub.export({ format: 'jwk' })).toEqual(out.publicJwk);
    // and the key works here: Node signs with it, the worker's public key verifies
    expect(crypto.verify('sha256', message, pub, crypto.sign('sha256', message, priv))).toBe(true);
  });

  it('EC secp224r1 (no JWK, as in Node): PEM exports match Node, signature verifies in Node', async () => {
    const out = await call('generateNoJwk', { namedCurve: 'secp224r1' });
    const priv = crypto.createPrivateKey(out.pkcs8Pem);
    expect(priv.asymmetricKeyDetails).toEqual({ namedCurve: 'secp224r1' });
    expect(priv.export({ type: 'sec1', format: 'pem' })).toBe(out.sec1Pem);
    expect(crypto.createPublicKey(priv).export({ type: 'spki', format: 'pem' })).toBe(out.spkiPem);
    expect(crypto.verify('sha224', message, crypto.createPublicKey(out.spkiPem), Buffer.from(out.signature, 'base64'))).toBe(true);
    expect(out.jwk).toEqual(['ERR_CRYPTO_JWK_UNSUPPORTED_CURVE', 'Unsupported JWK EC curve: secp224r1.']);
  });

  for (const [curve, algorithm, crv] of [['P-256', 'sha256', 'P-256'], ['P-384', 'sha384', 'P-384'], ['P-521', 'sha512', 'P-521']]) {
    it(`EC ${curve}: exports match Node's for the same key, ECDSA signature verifies in Node`, async () => {
      const out = await call('generate', { type: 'ec', options: { namedCurve: curve }, algorithm });
      expect(out).toMatchObject({ asymmetricKeyType: 'ec', selfVerify: true, equalsSelf: true, equalsOther: false, derived: true });
      expect(out.publicJwk.crv).toBe(crv);
      const priv = crypto.createPrivateKey(out.pkcs8Pem);
      expect(out.details).toEqual(crypto.createPublicKey(out.spkiPem).asymmetricKeyDetails);
      expect(priv.export({ type: 'pkcs8', format: 'pem' })).toBe(out.pkcs8Pem);
      expect(priv.export({ type: 'sec1', format: 'pem' })).toBe(out.sec1Pem);
      expect(priv.export({ format: 'jwk' })).toEqual(out.privateJwk);
      expect(crypto.verify(algorithm, message, crypto.createPublicKey({ key: out.publicJwk, format: 'jwk' }), Buffer.from(out.signature, 'base64'))).toBe(true);
    });
  }

  it('Ed25519 and X25519: exports match Node, Ed25519 signature verifies in Node', async () => {
    const ed = await call('generate', { type: 'ed25519', algorithm: null });
    expect(ed).toMatchObject({ asymmetricKeyType: 'ed25519', details: {}, selfVerify: true, equalsSelf: true, derived: true });
    const priv = crypto.createPrivateKey(ed.pkcs8Pem);
    expect(priv.export({ type: 'pkcs8', format: 'der' }).toString('base64')).toBe(ed.pkcs8Der);
    // workerd's JWK (so Cinder's) also names the algorithm
    expect(ed.privateJwk).toEqual({ ...priv.export({ format: 'jwk' }), alg: 'EdDSA' });
    expect(crypto.verify(null, message, crypto.createPublicKey(ed.spkiPem), Buffer.from(ed.signature, 'base64'))).toBe(true);
  });
});

describe('keys made by the runner, used in the worker', () => {
  const rsaKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ecKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const edKey = crypto.generateKeyPairSync('ed25519');
  const p224Key = crypto.generateKeyPairSync('ec', { namedCurve: 'secp224r1' });
  const pem = (k: crypto.KeyObject, type: 'pkcs8' | 'spki' | 'pkcs1' | 'sec1') => k.export({ type, format: 'pem' } as never) as string;
  const der = (k: crypto.KeyObject, type: string) => (k.export({ type, format: 'der' } as never) as Buffer).toString('base64');

  const cases: [string, crypto.KeyPairKeyObjectResult, string | null, Record<string, unknown>, Record<string, unknown>, Record<string, unknown>][] = [
    ['RSA PKCS#8 PEM, PKCS#1 v1.5', rsaKey, 'sha256', { key: pem(rsaKey.privateKey, 'pkcs8') }, { key: pem(rsaKey.publicKey, 'spki') }, {}],
    ['RSA PKCS#1 PEM (both halves), SHA-512', rsaKey, 'sha512', { key: pem(rsaKey.privateKey, 'pkcs1') }, { key: pem(rsaKey.publicKey, 'pkcs1') }, {}],
    ['RSA DER', rsaKey, 'sha384', { key: der(rsaKey.privateKey, 'pkcs8'), format: 'der', type: 'pkcs8' }, { key: der(rsaKey.publicKey, 'spki'), format: 'der', type: 'spki' }, {}],
    ['RSA JWK', rsaKey, 'sha256', { key: rsaKey.privateKey.export({ format: 'jwk' }), format: 'jwk' }, { key: rsaKey.publicKey.export({ format: 'jwk' }), format: 'jwk' }, {}],
    ['RSA-PSS (salt = digest length)', rsaKey, 'sha256', { key: pem(rsaKey.privateKey, 'pkcs8') }, { key: pem(rsaKey.publicKey, 'spki') }, { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }],
    ['RSA-PSS (default salt lengths)', rsaKey, 'sha256', { key: pem(rsaKey.privateKey, 'pkcs8') }, { key: pem(rsaKey.publicKey, 'spki') }, { padding: crypto.constants.RSA_PKCS1_PSS_PADDING }],
    ['EC SEC1 PEM, DER signature', ecKey, 'sha256', { key: pem(ecKey.privateKey, 'sec1') }, { key: pem(ecKey.publicKey, 'spki') }, {}],
    ['EC JWK, IEEE P1363 signature', ecKey, 'sha256', { key: ecKey.privateKey.export({ format: 'jwk' }), format: 'jwk' }, { key: ecKey.publicKey.export({ format: 'jwk' }), format: 'jwk' }, { dsaEncoding: 'ieee-p1363' }],
    ['EC secp224r1 PKCS#8 PEM, SHA-224', p224Key, 'sha224', { key: pem(p224Key.privateKey, 'pkcs8') }, { key: pem(p224Key.publicKey, 'spki') }, {}],
    ['Ed25519 PKCS#8 PEM', edKey, null, { key: pem(edKey.privateKey, 'pkcs8') }, { key: pem(edKey.publicKey, 'spki') }, {}],
  ];
  for (const [name, pair, algorithm, privateInput, publicInput, options] of cases) {
    it(`${name}: the worker's signature verifies in Node, Node's verifies in the worker`, async () => {
      const nodeOptions = (key: crypto.KeyObject) => ({ key, ...options }) as never;
      const out = await call('signWith', { ...privateInput, algorithm, ...options });
      expect(crypto.verify(algorithm, message, nodeOptions(pair.publicKey), Buffer.from(out.signature, 'base64'))).toBe(true);
      if (algorithm) {
        const streamed = await call('signWith', { ...privateInput, algorithm, ...options, streamed: true });
        expect(crypto.verify(algorithm, message, nodeOptions(pair.publicKey), Buffer.from(streamed.signature, 'base64'))).toBe(true);
      }
      const signature = crypto.sign(algorithm, message, nodeOptions(pair.privateKey)).toString('base64');
      expect(await call('verifyWith', { ...publicInput, algorithm, signature, ...options })).toEqual({ oneShot: true, tampered: false, streamed: algorithm ? true : null });
    });
  }

  it('PKCS#1 v1.5 signatures are deterministic: the worker writes the same bytes Node does', async () => {
    const out = await call('signWith', { key: pem(rsaKey.privateKey, 'pkcs8'), algorithm: 'sha256' });
    expect(out.signature).toBe(crypto.sign('sha256', message, rsaKey.privateKey).toString('base64'));
  });

  it('imports and re-exports keys byte for byte as Node does (RSA, EC, Ed25519), JWK round trips', async () => {
    for (const pair of [rsaKey, ecKey, edKey]) {
      const out = await call('importExport', { pem: pem(pair.privateKey, 'pkcs8'), publicPem: pem(pair.publicKey, 'spki') });
      const jwk = { ...pair.privateKey.export({ format: 'jwk' }), ...(pair === edKey ? { alg: 'EdDSA' } : {}) };
      expect(out).toEqual({ pkcs8: pem(pair.privateKey, 'pkcs8'), spki: pem(pair.publicKey, 'spki'), jwk, fromJwk: true, pubFromJwk: true });
    }
  });

  it("createPublicKey reads an X.509 certificate's key as Node does", async () => {
    // a self-signed P-256 certificate made by openssl
    const pem = "-----BEGIN CERTIFICATE-----\nMIIBeDCCAR+gAwIBAgIUW/iiKgPPk5WM3N8A5Uz32ZWa5v8wCgYIKoZIzj0EAwIw\nEjEQMA4GA1UEAwwHZXhhbXBsZTAeFw0yNjEyMDYxNTE1NDZaFw0yNzAxMDUxNTE1\nNDZaMBIxEDAOBgNVBAMMB2V4YW1wbGUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC\nAASc5wvEhOiQTGN7jdu98JjVjOqgzJfoSVoJgTXavvTr2aBHPCIIUdz9X4o+0TvY\nYSDMpLBb4tSZM0qTPabBsqS3o1MwUTAdBgNVHQ4EFgQUZkQ8KSDsb1siStsNODXh\ngHrXVBcwHwYDVR0jBBgwFoAUZkQ8KSDsb1siStsNODXhgHrXVBcwDwYDVR0TAQH/\nBAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiAox5MgWXtXDUfjQGBTJA4KpiWrI0nr\niacDQnPmEd21OgIgTDLbEPvsC1cEA8WhMcw7gRGHkcRstizRpQpXk/WzR5Y=\n-----END CERTIFICATE-----\n";
    expect(await call('certificate', { pem })).toEqual({ spki: crypto.createPublicKey(pem).export({ type: 'spki', format: 'pem' }) });
  });

  it('RSA encryption: OAEP (SHA-1 and SHA-256) and PKCS#1 v1.5 both ways; privateEncrypt reads back with Node; a bad block is refused', async () => {
    for (const [oaepHash, padding] of [[undefined, undefined], ['sha256', undefined], [undefined, crypto.constants.RSA_PKCS1_PADDING]] as const) {
      const nodeOptions = (key: crypto.KeyObject) => ({ key, ...(oaepHash ? { oaepHash } : {}), ...(padding ? { padding } : {}) });
      const ciphertext = crypto.publicEncrypt(nodeOptions(rsaKey.publicKey), Buffer.from('to the worker')).toString('base64');
      const out = await call('encrypt', { publicPem: pem(rsaKey.publicKey, 'spki'), privatePem: pem(rsaKey.privateKey, 'pkcs8'), ciphertext, oaepHash, padding });
      expect(out.decrypted).toBe('to the worker');
      if (padding) {
        // Node refuses PKCS#1 v1.5 private decryption (CVE-2023-46809); check the block by hand
        const block = crypto.privateDecrypt({ key: rsaKey.privateKey, padding: crypto.constants.RSA_NO_PADDING }, Buffer.from(out.encrypted, 'base64'));
        expect(block[0]).toBe(0);
        expect(block[1]).toBe(2);
        expect(block.subarray(block.indexOf(0, 2) + 1).toString()).toBe('to the runner');
      } else {
        expect(crypto.privateDecrypt(nodeOptions(rsaKey.privateKey), Buffer.from(out.encrypted, 'base64')).toString()).toBe('to the runner');
        expect(out.badOaep).toBe('ERR_OSSL_RSA_OAEP_DECODING_ERROR');
      }
      expect(crypto.publicDecrypt(rsaKey.publicKey, Buffer.from(out.signedRaw, 'base64')).toString()).toBe('raw');
    }
  });
});

describe('JWTs signed the jsonwebtoken way', () => {
  for (const [alg, pair] of [
    ['RS256', crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['ES256', crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })],
  ] as const) {
    it(`${alg}: the worker's token verifies in the runner (node:crypto and jose); the runner's verifies in the worker`, async () => {
      const privatePem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' });
      const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' });
      const token = await new SignJWT({ sub: 'runner' }).setProtectedHeader({ alg }).setIssuedAt(1700000000).sign(pair.privateKey);
      const out = await call('jwt', { privatePem, alg, token, publicPem });
      expect(out.verified).toBe(true);
      expect(out.claims).toEqual({ sub: 'runner', iat: 1700000000 });
      const [h, p, sig] = (out.token as string).split('.');
      const options = alg === 'ES256' ? { key: pair.publicKey, dsaEncoding: 'ieee-p1363' as const } : pair.publicKey;
      expect(crypto.verify('sha256', Buffer.from(`${h}.${p}`), options, Buffer.from(sig, 'base64url'))).toBe(true);
      const { payload } = await jwtVerify(out.token, pair.publicKey);
      expect(payload).toEqual({ sub: 'worker', iat: 1700000000 });
    });
  }
});

describe('key agreement, scrypt, secret keys', () => {
  it('ECDH on P-256 and X25519 diffieHellman agree with Node; unknown curves refused as workerd does', async () => {
    const peer = crypto.createECDH('prime256v1');
    peer.generateKeys();
    const x = crypto.generateKeyPairSync('x25519');
    const out = await call('agree', { curve: 'prime256v1', peerPublic: peer.getPublicKey('base64'), x25519Peer: (x.publicKey.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64') });
    expect(out.secret).toBe(peer.computeSecret(out.mine, 'base64', 'base64'));
    expect(out.compressed).toBe(crypto.ECDH.convertKey(out.mine, 'prime256v1', 'base64', 'hex', 'compressed'));
    const theirs = crypto.createPublicKey({ key: Buffer.from(out.x25519Public, 'base64'), format: 'der', type: 'spki' });
    expect(out.x25519Secret).toBe(crypto.diffieHellman({ privateKey: x.privateKey, publicKey: theirs }).toString('base64'));
    expect(out.badCurve).toBe('Failed to create key using named curve');
  });

  it('MODP groups: the same primes as Node, modp14 agrees with Node, verifyError as workerd reports it', async () => {
    const peer = crypto.getDiffieHellman('modp14');
    peer.generateKeys();
    const out = await call('modp', { peer: peer.getPublicKey('base64') });
    expect(out.prime).toBe(peer.getPrime('hex'));
    expect(out.generator).toBe('02');
    expect(out.secret).toBe(peer.computeSecret(out.mine, 'base64', 'base64'));
    expect(out.primes).toEqual(['modp15', 'modp16', 'modp17', 'modp18'].map((g) => crypto.getDiffieHellman(g).getPrime('hex')));
    // the small groups Node still has are refused, as workerd refuses them
    expect(out.small).toBe('Failed to init DiffieHellmanGroup: invalid group. Only groups {modp14, modp15, modp16, modp17, modp18} are supported.');
    // as workerd (BoringSSL's DH_check) reports them, checked against workerd by the differential
    // node-probe; Node on OpenSSL 3 reports other flags (0, 128, 129)
    expect(out.verifyErrors).toEqual([8, 8, 9]);
  });

  it('scrypt (sync, callback through promisify) gives what Node gives; over-memory parameters are refused', async () => {
    const out = await call('scrypt', { password: 'correct horse', salt: 'NaCl', options: { N: 1024, r: 8, p: 2 } });
    expect(out).toEqual({
      sync: crypto.scryptSync('correct horse', 'NaCl', 32, { N: 1024, r: 8, p: 2 }).toString('hex'),
      async: crypto.scryptSync('correct horse', 'NaCl', 24).toString('hex'),
      tooMuch: 'RangeError',
    });
  });

  it('generatePrime and checkPrime: primes of the asked size Node calls prime (safe ones too), and the other way round', async () => {
    const known = crypto.generatePrimeSync(256, { bigint: true });
    const composite = (crypto.generatePrimeSync(64, { bigint: true }) * crypto.generatePrimeSync(64, { bigint: true })).toString(16).padStart(32, '0');
    const out = await call('primes', { known: String(known), composite });
    expect(BigInt(out.progression) % 12n).toBe(11n);
    for (const [value, bits] of [[out.plain, 64], [out.safe, 48], [out.small, 3], [out.async, 128], [out.progression, 40]] as const) {
      const n = BigInt(value);
      expect(n.toString(2).length).toBe(bits);
      expect(crypto.checkPrimeSync(n)).toBe(true);
    }
    expect(crypto.checkPrimeSync((BigInt(out.safe) - 1n) / 2n)).toBe(true);
    expect(crypto.checkPrimeSync(Buffer.from(out.buffer, 'hex'))).toBe(true);
    expect([out.known, out.composite, out.asyncCheck]).toEqual([true, false, true]);
  });

  it('secret keys: createSecretKey, export (buffer, JWK), generateKeySync; createHmac and createCipheriv take them', async () => {
    const hmac = crypto.createHmac('sha256', 's3cret').update('x').digest('hex');
    const aes = crypto.createCipheriv('aes-128-cbc', Buffer.alloc(16, 1), Buffer.alloc(16));
    expect(await call('secret')).toEqual({ type: 'secret', size: 6, raw: 's3cret', jwk: { kty: 'oct', k: 'czNjcmV0' }, made: 16, hmac, hmacWithKeyObject: hmac, aesWithKeyObject: aes.update('x', 'utf8', 'hex') + aes.final('hex') });
  });

  it('generateKeyPair (callback and promisified): EC in the isolate, RSA through Web Crypto on the host; Node reads both', async () => {
    const out = await call('asyncPair');
    expect(crypto.createPublicKey(out.ecPublic).asymmetricKeyDetails).toEqual({ namedCurve: 'secp384r1' });
    expect(crypto.verify('sha256', message, crypto.createPublicKey(out.rsaPublic), Buffer.from(out.rsaSig, 'base64'))).toBe(true);
  });

  it('a 4096-bit RSA key made synchronously under the default CPU limit ends as any over-limit request does', async () => {
    const res = await server.request('keygen', '/');
    expect(res.status).toBe(503);
    expect(res.text).toContain('exceeded CPU time limit');
    expect(server.logs.some((l) => (l as { worker?: string }).worker === 'keygen' && (l as { limit?: string }).limit === 'cpu')).toBe(true);
  });

  it('generateKeyPair (asynchronous) makes a 4096-bit RSA key within the default CPU limit: Web Crypto makes it on the host', async () => {
    const res = await server.request('async-keygen', '/');
    expect(res.status, res.text).toBe(200);
    const pair = JSON.parse(res.text) as { bits: number; publicKey: string; privateKey: string };
    expect(pair.bits).toBe(4096);
    // a working pair: what the private key signs, the public key verifies
    const signature = crypto.sign('sha256', Buffer.from([1, 2, 3]), pair.privateKey);
    expect(crypto.verify('sha256', Buffer.from([1, 2, 3]), pair.publicKey, signature)).toBe(true);
  });

  it('pbkdf2 (callback) at 100,000 iterations fits the default CPU limit: a worker naming it gets Web Crypto, which runs it on the host', async () => {
    const res = await server.request('pbkdf2-native', '/');
    expect(res.status, res.text).toBe(200);
    expect(res.text).toBe(crypto.pbkdf2Sync('pw', 'salt', 100000, 32, 'sha256').toString('hex'));
  });

  it('refuses what it does not do, by name: RSA over 4096 bits, Ed448, encrypted keys, toCryptoKey, garbage', async () => {
    const out = await call('refusals');
    expect(out.rsa8192).toEqual(['RangeError', 'ERR_OUT_OF_RANGE', 'The value of "options.modulusLength" is out of range. It must be >= 512 && <= 4096 in Cinder. Received 8192']);
    expect(out.ed448).toEqual(['TypeError', 'ERR_INVALID_ARG_VALUE', "The argument 'type' must be one of: 'rsa', 'ec', 'ed25519', 'x25519', 'dh'. Received 'ed448'"]);
    expect(out.encrypted[2]).toMatch(/Decrypting an encrypted private key .* is not supported by node:crypto in Cinder/);
    expect(out.toCryptoKey[2]).toMatch(/KeyObject.toCryptoKey .* is not supported/);
    expect(out.garbage[1]).toBe('ERR_OSSL_UNSUPPORTED');
    expect(out.curves).toEqual(['secp224r1', 'prime256v1', 'secp384r1', 'secp521r1']);
  });
});
