// A probe of crypto.subtle run by the differential harness in Cinder and in workerd: every
// section answers with deterministic data (fixed keys and inputs, or only the shape of random
// results), so the two runtimes must answer byte for byte the same. Error messages differ by
// implementation and are not compared, only error names (docs/compat.md).
const KEYS = {
  "p256": {
    "kty": "EC",
    "x": "-Yf9JUPq39ewsCIXqToYRnYyl9_gnzs7aXC56BiBn68",
    "y": "AyVKZGCXD4FBaSiw3QADAGCVZ-FswMDAgc1_tGW4_30",
    "crv": "P-256",
    "d": "ivD_4GiLz_M_j6-ACBNuaMFytYpizbcd-EUMeML2NdQ"
  },
  "p384a": {
    "kty": "EC",
    "x": "J81YAwTFKKMrUugxoPWjSmwVO-phlMa82k4BUMX28jTf6nGdqsdovUBvm-G3F-HK",
    "y": "1Gv6J46KhycfpPBfZZ9837cQ2C9zlld80yIEoNJEBxKmunMyR2DAxqBZ2jTr8vLW",
    "crv": "P-384",
    "d": "yfBsm_Fon81l6iv-midqdkS_DkJUqtyLKzcC3E9uxdbf64-SYE9LgOt7xYob2eBo"
  },
  "p384b": {
    "kty": "EC",
    "x": "4l2XNnCjrb6EcWYmDE3xmX4xSd_eTWT3s-o97bESghDcG4S2LNVCQ4K34eX26hTl",
    "y": "I-voh7eLKmorinFuVzrbKJudksgo8VjDCYVBiVnEOGqs5Zr_FEjWHOJXUUYZX6e7",
    "crv": "P-384"
  },
  "rsa": "MIICeAIBADANBgkqhkiG9w0BAQEFAASCAmIwggJeAgEAAoGBAMqeGpy7C4oJ02/BarvifDFR7HT7myehy9t+cltCjfzK6bcetuRjruESrbLQffl6KVNYfBSq2pS10WXD778M8MJRU2Z6pMXFuc6FCtmZEyMe49Cn7g2AE/c3SbMxZIwKREuSAIov4ZpLUaxTSnaapOZSBhMthx2gNR2jHW8tUbGzAgMBAAECgYBMBt03eBvRVPSIV4wEKeyt2O6fypUiXtyOZLjmM2fxtfXSZ2z678h73bVdhkvuo38ELgyI+L8B0+NZixbXmjRwGkvkU5FG5l5w6dz6aQXdHWXNKRK5Rfq/bKbOXZ6o4g0KAyD06Sv0iIxsTi1BiSUfOF6abHQ10to2bR1eBTDr8QJBAO/smg1RWmwd9LjmkKvM7ARuaScoWQRNMdOlowivss4uDge2qlN5psV3Zl6x6sQsHO4xQTQVfm0oEaf3LVMzESkCQQDYMZW/T6qwqAHPvq1oPPAvglapEmI+wD//axutxVKnOGAJyLPwQoono8bcMDI+EYM4JshiyiNLk8jaGU4utDt7AkEAk06jrzWZ3PPvg28cuD7TUk0wBrjBHuD+jMIP/Y9Sq0CfoKDIpwP0Hx2WHuICEHw9LwnSzNW9j+ugG46pp4GdMQJBAIhQK2Um7C7an9nHFjtFQQQToGSWLM/4E+IOPLOCWS0KhLNmkt4IdmesAjTPRr6P+DatbWesoDiFA/1QO1WDWoUCQQCZt9IazecJpU8WdC8UoEpXlb6UmJwatsGv/31yESpkXKabjglMQvjzOUiyiwejiXX6cCttXWQWylVPTfYomTdd"
};

const enc = (s) => new TextEncoder().encode(s);
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const s = crypto.subtle;

async function error(f) {
  try {
    await f();
    return 'no error';
  } catch (e) {
    return `${e.constructor === DOMException ? 'DOMException' : e.constructor.name}:${e.name}`;
  }
}

const shape = (key) => ({ type: key.type, extractable: key.extractable, algorithm: key.algorithm, usages: key.usages });

const SECTIONS = {
  async interfaces() {
    return {
      subtle: Object.getOwnPropertyNames(SubtleCrypto.prototype).sort(),
      crypto: Object.getOwnPropertyNames(Crypto.prototype).sort(),
      key: Object.getOwnPropertyNames(CryptoKey.prototype),
      tags: [String(crypto.subtle), typeof CryptoKey, typeof crypto.DigestStream],
    };
  },

  async digest() {
    const out = {};
    for (const alg of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512', 'MD5', 'sha-256', { name: 'SHA-512' }]) {
      out[JSON.stringify(alg)] = hex(await s.digest(alg, enc('differential')));
    }
    out.empty = hex(await s.digest('SHA-256', new Uint8Array(0)));
    out.view = hex(await s.digest('SHA-256', new DataView(enc('xxabcxx').buffer, 2, 3)));
    out.errors = [await error(() => s.digest('SHA-3', enc('x'))), await error(() => s.digest({}, enc('x'))), await error(() => s.digest('SHA-256', 'x'))];
    return out;
  },

  async hmac() {
    const key = await s.importKey('raw', enc('secret key'), { name: 'HMAC', hash: 'SHA-256' }, true, ['sign', 'verify']);
    const sig = await s.sign('HMAC', key, enc('message'));
    const short = await s.importKey('raw', enc('k'), { name: 'HMAC', hash: { name: 'SHA-1' } }, false, ['sign']);
    const gen = await s.generateKey({ name: 'HMAC', hash: 'SHA-512' }, true, ['sign']);
    return {
      shape: shape(key),
      json: JSON.stringify(key),
      keys: Object.keys(key),
      sig: hex(sig),
      verify: [await s.verify('HMAC', key, sig, enc('message')), await s.verify('HMAC', key, sig, enc('massage'))],
      short: [shape(short), hex(await s.sign('HMAC', short, enc('m')))],
      jwk: await s.exportKey('jwk', key),
      generated: [shape(gen), (await s.exportKey('raw', gen)).byteLength],
    };
  },

  async aes() {
    const raw = new Uint8Array(32).map((_, i) => i);
    const iv = new Uint8Array(16).map((_, i) => 255 - i);
    const gcm = await s.importKey('raw', raw, 'AES-GCM', true, ['encrypt', 'decrypt']);
    const cbc = await s.importKey('raw', raw.subarray(0, 16), { name: 'AES-CBC' }, true, ['encrypt', 'decrypt']);
    const ctr = await s.importKey('raw', raw.subarray(0, 24), { name: 'AES-CTR' }, false, ['encrypt']);
    const kw = await s.importKey('raw', raw.subarray(0, 16), 'AES-KW', false, ['wrapKey', 'unwrapKey']);
    const data = enc('attack at dawn!');
    const gcmCt = await s.encrypt({ name: 'AES-GCM', iv: iv.subarray(0, 12), additionalData: enc('aad'), tagLength: 96 }, gcm, data);
    const gen = await s.generateKey({ name: 'AES-GCM', length: 192 }, true, ['encrypt']);
    return {
      shapes: [shape(gcm), shape(cbc), shape(ctr), shape(kw), shape(gen)],
      gcm: hex(gcmCt),
      gcmBack: new TextDecoder().decode(await s.decrypt({ name: 'AES-GCM', iv: iv.subarray(0, 12), additionalData: enc('aad'), tagLength: 96 }, gcm, gcmCt)),
      cbc: hex(await s.encrypt({ name: 'AES-CBC', iv }, cbc, data)),
      ctr: hex(await s.encrypt({ name: 'AES-CTR', counter: iv, length: 64 }, ctr, data)),
      wrapped: hex(await s.wrapKey('raw', cbc, kw, 'AES-KW')),
      jwk: await s.exportKey('jwk', gcm),
      errors: [
        await error(() => s.importKey('raw', new Uint8Array(7), 'AES-GCM', true, ['encrypt'])),
        await error(() => s.generateKey({ name: 'AES-GCM', length: 100 }, true, ['encrypt'])),
        await error(() => s.generateKey({ name: 'AES-GCM', length: 128 }, true, [])),
        await error(() => s.importKey('raw', raw, 'AES-GCM', true, ['sign'])),
        await error(() => s.decrypt({ name: 'AES-GCM', iv: iv.subarray(0, 12) }, gcm, new Uint8Array(40))),
        await error(() => s.encrypt({ name: 'AES-GCM', iv: iv.subarray(0, 12) }, ctr, data)),
        await error(() => s.exportKey('raw', ctr)),
        await error(() => s.encrypt({ name: 'AES-CBC', iv: new Uint8Array(3) }, cbc, data)),
      ],
    };
  },

  async derivation() {
    const pw = await s.importKey('raw', enc('hunter2'), 'PBKDF2', false, ['deriveBits', 'deriveKey']);
    const ikm = await s.importKey('raw', enc('input key material'), 'HKDF', false, ['deriveBits', 'deriveKey']);
    const derived = await s.deriveKey({ name: 'PBKDF2', salt: enc('salt'), iterations: 1000, hash: 'SHA-256' }, pw, { name: 'AES-GCM', length: 128 }, true, ['encrypt']);
    return {
      shapes: [shape(pw), shape(ikm), shape(derived)],
      pbkdf2: hex(await s.deriveBits({ name: 'PBKDF2', salt: enc('salt'), iterations: 1000, hash: 'SHA-256' }, pw, 256)),
      hkdf: hex(await s.deriveBits({ name: 'HKDF', salt: enc('s'), info: enc('i'), hash: 'SHA-384' }, ikm, 128)),
      derived: hex(await s.exportKey('raw', derived)),
      errors: [await error(() => s.exportKey('raw', pw)), await error(() => s.importKey('raw', enc('x'), 'PBKDF2', true, ['deriveBits']))],
    };
  },

  async ec() {
    const priv = await s.importKey('jwk', KEYS.p256, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']);
    const { d, ...pubJwk } = KEYS.p256;
    const pub = await s.importKey('jwk', pubJwk, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
    const sig = await s.sign({ name: 'ECDSA', hash: 'SHA-256' }, priv, enc('ec'));
    const a = await s.importKey('jwk', KEYS.p384a, { name: 'ECDH', namedCurve: 'P-384' }, false, ['deriveBits']);
    const b = await s.importKey('jwk', KEYS.p384b, { name: 'ECDH', namedCurve: 'P-384' }, true, []);
    const gen = await s.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify']);
    return {
      shapes: [shape(priv), shape(pub), shape(a), shape(b), shape(gen.privateKey), shape(gen.publicKey)],
      sigLength: sig.byteLength,
      verify: await s.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, sig, enc('ec')),
      ecdh: hex(await s.deriveBits({ name: 'ECDH', public: b }, a, 384)),
      raw: hex(await s.exportKey('raw', pub)),
      spki: hex(await s.exportKey('spki', pub)),
      jwk: await s.exportKey('jwk', pub),
      errors: [
        await error(() => s.generateKey({ name: 'ECDSA', namedCurve: 'P-999' }, true, ['sign'])),
        await error(() => s.sign({ name: 'ECDSA', hash: 'SHA-256' }, pub, enc('x'))),
        await error(() => s.exportKey('raw', priv)),
        await error(() => s.deriveBits({ name: 'ECDH', public: pub }, a, 384)),
      ],
    };
  },

  async ed25519() {
    const seed = new Uint8Array(32).fill(7);
    const pkcs8 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, ...seed]);
    const priv = await s.importKey('pkcs8', pkcs8, 'Ed25519', true, ['sign']);
    const legacy = await s.importKey('pkcs8', pkcs8, { name: 'NODE-ED25519', namedCurve: 'NODE-ED25519' }, true, ['sign']);
    const jwk = await s.exportKey('jwk', priv);
    const pub = await s.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, { name: 'Ed25519' }, true, ['verify']);
    const sig = await s.sign('Ed25519', priv, enc('ed'));
    const gen = await s.generateKey('Ed25519', true, ['sign', 'verify']);
    return {
      shapes: [shape(priv), shape(legacy), shape(pub), shape(gen.privateKey), shape(gen.publicKey)],
      jwk,
      sig: hex(sig),
      legacySig: hex(await s.sign({ name: 'NODE-ED25519' }, legacy, enc('ed'))),
      verify: await s.verify('Ed25519', pub, sig, enc('ed')),
      raw: hex(await s.exportKey('raw', pub)),
      errors: [await error(() => s.generateKey({ name: 'Ed448' }, true, ['sign'])), await error(() => s.importKey('raw', new Uint8Array(5), 'Ed25519', true, ['verify']))],
    };
  },

  async rsa() {
    const der = b64(KEYS.rsa);
    const pkcs1 = await s.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['sign']);
    const pss = await s.importKey('pkcs8', der, { name: 'RSA-PSS', hash: 'SHA-384' }, false, ['sign']);
    const oaep = await s.importKey('pkcs8', der, { name: 'RSA-OAEP', hash: 'SHA-1' }, false, ['decrypt']);
    const jwk = await s.exportKey('jwk', pkcs1);
    const { d, p, q, dp, dq, qi, ...pubJwk } = jwk;
    const oaepPub = await s.importKey('jwk', { ...pubJwk, alg: 'RSA-OAEP', key_ops: ['encrypt'] }, { name: 'RSA-OAEP', hash: 'SHA-1' }, true, ['encrypt']);
    const ct = await s.encrypt({ name: 'RSA-OAEP', label: enc('L') }, oaepPub, enc('oaep'));
    const gen = await s.generateKey({ name: 'RSA-PSS', hash: 'SHA-256', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]) }, false, ['sign', 'verify']);
    return {
      shapes: [shape(pkcs1), shape(pss), shape(oaep), shape(oaepPub), shape(gen.privateKey), shape(gen.publicKey)],
      json: JSON.stringify(pkcs1.algorithm),
      jwkKeys: Object.keys(jwk),
      jwk: { alg: jwk.alg, kty: jwk.kty, e: jwk.e, ext: jwk.ext, key_ops: jwk.key_ops },
      sig: hex(await s.sign('RSASSA-PKCS1-v1_5', pkcs1, enc('rsa'))),
      pssLength: (await s.sign({ name: 'RSA-PSS', saltLength: 48 }, pss, enc('rsa'))).byteLength,
      oaep: new TextDecoder().decode(await s.decrypt({ name: 'RSA-OAEP', label: enc('L') }, oaep, ct)),
      errors: [
        await error(() => s.decrypt({ name: 'RSA-OAEP', label: enc('M') }, oaep, ct)),
        await error(() => s.importKey('pkcs8', der.subarray(0, 50), { name: 'RSA-PSS', hash: 'SHA-256' }, true, ['sign'])),
        await error(() => s.importKey('jwk', { ...pubJwk, alg: 'RSA-OAEP', key_ops: ['encrypt'] }, { name: 'RSA-OAEP', hash: 'SHA-256' }, true, ['encrypt'])),
        await error(() => s.generateKey({ name: 'RSA-PSS', hash: 'SHA-256', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['encrypt'])),
      ],
    };
  },

  async wrap() {
    const kek = await s.importKey('raw', new Uint8Array(16).fill(1), 'AES-KW', false, ['wrapKey', 'unwrapKey']);
    const hmac = await s.importKey('raw', new Uint8Array(32).fill(2), { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
    const wrapped = await s.wrapKey('raw', hmac, kek, { name: 'AES-KW' });
    const back = await s.unwrapKey('raw', wrapped, kek, 'AES-KW', { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
    const gcm = await s.importKey('raw', new Uint8Array(16).fill(3), 'AES-GCM', false, ['wrapKey', 'unwrapKey']);
    const iv = new Uint8Array(12).fill(4);
    const wrappedJwk = await s.wrapKey('jwk', hmac, gcm, { name: 'AES-GCM', iv });
    const backJwk = await s.unwrapKey('jwk', wrappedJwk, gcm, { name: 'AES-GCM', iv }, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return {
      wrapped: hex(wrapped),
      back: [shape(back), hex(await s.exportKey('raw', back))],
      backJwk: shape(backJwk),
      errors: [await error(() => s.unwrapKey('raw', new Uint8Array(40), kek, 'AES-KW', { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']))],
    };
  },

  async webidl() {
    const key = await s.importKey('raw', new Uint8Array(16), 'AES-GCM', false, ['encrypt']);
    return [
      await error(() => s.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, {}, enc('x'))),
      await error(() => s.sign('HMAC', key)),
      await error(() => s.importKey('bogus', new Uint8Array(16), 'AES-GCM', false, ['encrypt'])),
      await error(() => s.importKey('raw', new Uint8Array(16), 'AES-GCM', false, ['bogus'])),
      await error(() => s.importKey('raw', 'not bytes', 'AES-GCM', false, ['encrypt'])),
      await error(() => s.generateKey({ name: 'NOPE' }, true, ['sign'])),
      await error(() => s.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, key, 5)),
      await error(() => SubtleCrypto.prototype.digest.call({}, 'SHA-256', enc('x'))),
      await error(() => new SubtleCrypto()),
      await error(() => new CryptoKey()),
    ];
  },

  async extras() {
    const ds = new crypto.DigestStream('SHA-256');
    const w = ds.getWriter();
    await w.write(enc('abc'));
    await w.write('def');
    await w.close();
    const md5 = new crypto.DigestStream({ name: 'MD5' });
    await new Response('x'.repeat(100000)).body.pipeTo(md5);
    return {
      timingSafeEqual: [s.timingSafeEqual(enc('abc'), enc('abc')), s.timingSafeEqual(enc('abc').buffer, enc('abd')), await error(() => s.timingSafeEqual(enc('a'), enc('ab')))],
      digestStream: [hex(await ds.digest), String(ds.bytesWritten), typeof ds.bytesWritten, hex(await md5.digest), String(md5.bytesWritten)],
      errors: [await error(() => new crypto.DigestStream('SHA-3')), await error(async () => { const d = new crypto.DigestStream('SHA-1'); await d.getWriter().write(5); })],
    };
  },
};

export default {
  async fetch(request) {
    const section = new URL(request.url).pathname.slice(1);
    const run = SECTIONS[section];
    if (!run) return Response.json({ sections: Object.keys(SECTIONS) }, { status: 404 });
    try {
      return Response.json(await run());
    } catch (e) {
      return Response.json({ threw: `${e.name}: ${e.message}` }, { status: 500 });
    }
  },
};
