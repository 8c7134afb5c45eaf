// crypto.subtle through a real Cinder server: isolates from the snapshot, the `crypto` op as
// installStandardOps registers it, keys kept per isolate across requests, JWKs from Node imported
// in the guest (private members included), and a streamed upload hashed by crypto.DigestStream.
import crypto, { webcrypto } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const subtle = webcrypto.subtle;

const workers = {
  // One ECDSA key pair per isolate, made on first use and kept in module scope.
  signer: `
    let pair;
    const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
    export default {
      async fetch(request) {
        pair ??= crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
        const { publicKey, privateKey } = await pair;
        const path = new URL(request.url).pathname;
        if (path === '/jwk') return Response.json(await crypto.subtle.exportKey('jwk', publicKey));
        if (path === '/private') {
          try { await crypto.subtle.exportKey('jwk', privateKey); return new Response('exported?!'); }
          catch (e) { return Response.json({ name: e.name, dom: e instanceof DOMException, extractable: privateKey.extractable }); }
        }
        const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, await request.arrayBuffer());
        return new Response(hex(sig));
      },
    };`,
  // Imports a private JWK the client sends and signs with it.
  jwk: `
    const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
    export default {
      async fetch(request) {
        const { jwk, algorithm, sign } = await request.json();
        const key = await crypto.subtle.importKey('jwk', jwk, algorithm, false, ['sign']);
        return Response.json({ algorithm: key.algorithm, sig: hex(await crypto.subtle.sign(sign, key, new TextEncoder().encode('payload'))) });
      },
    };`,
  // Hashes the upload as it streams in (1 MB: ~6.5 ms of CPU here; 1 s keeps a slower, loaded CI
  // machine far from the 50 ms default, which this test is not about).
  digest: { limits: { cpuMs: 1000 }, code: `
    const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
    export default {
      async fetch(request) {
        const stream = new crypto.DigestStream('SHA-256');
        await request.body.pipeTo(stream);
        return Response.json({ sha256: hex(await stream.digest), bytes: String(stream.bytesWritten) });
      },
    };` },
};

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(workers);
});
afterAll(() => server.close());

describe('crypto.subtle in a real server', () => {
  it('keeps a generated key across requests and signs what Node verifies', async () => {
    const jwk1 = JSON.parse((await server.request('signer', '/jwk')).text);
    const jwk2 = JSON.parse((await server.request('signer', '/jwk')).text);
    expect(jwk1).toEqual(jwk2);
    expect(jwk1).toMatchObject({ kty: 'EC', crv: 'P-256', ext: true, key_ops: ['verify'] });
    const pub = await subtle.importKey('jwk', jwk1, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    const sig = (await server.request('signer', '/sign', { method: 'POST', body: 'sign me' })).text;
    expect(await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, Buffer.from(sig, 'hex'), Buffer.from('sign me'))).toBe(true);
  });

  it('never exports a non-extractable key', async () => {
    expect(JSON.parse((await server.request('signer', '/private')).text)).toEqual({ name: 'InvalidAccessError', dom: true, extractable: false });
  });

  it('imports private JWKs from Node (every member, one-letter names included) and signs with them', async () => {
    const cases = [
      { pair: crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }), algorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, sign: 'RSASSA-PKCS1-v1_5', verify: 'sha256' },
      { pair: crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }), algorithm: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' }, verify: 'sha384' },
      { pair: crypto.generateKeyPairSync('ed25519'), algorithm: 'Ed25519', sign: 'Ed25519', verify: null },
    ];
    for (const c of cases) {
      const jwk = c.pair.privateKey.export({ format: 'jwk' });
      const res = await server.request('jwk', '/', { method: 'POST', body: JSON.stringify({ jwk, algorithm: c.algorithm, sign: c.sign }) });
      expect(res.status, res.text).toBe(200);
      const { sig } = JSON.parse(res.text);
      const options = c.verify === 'sha384' ? { key: c.pair.publicKey, dsaEncoding: 'ieee-p1363' as const } : c.pair.publicKey;
      expect(crypto.verify(c.verify, Buffer.from('payload'), options, Buffer.from(sig, 'hex'))).toBe(true);
    }
  });

  it('hashes a streamed upload with crypto.DigestStream', async () => {
    const body = crypto.randomBytes(1024 * 1024 + 17);
    const res = await server.request('digest', '/', { method: 'POST', body });
    expect(JSON.parse(res.text)).toEqual({ sha256: crypto.createHash('sha256').update(body).digest('hex'), bytes: String(body.length) });
  });
});
