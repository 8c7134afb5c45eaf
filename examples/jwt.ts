// JWT sign and verify with `jose`, unchanged, on crypto.subtle: HS256, RS256, ES256 and EdDSA.
// Keys are both imported (fixed demo keys below, so tokens are reproducible) and generated (fresh
// ones for each /roundtrip). Run it with:
//
//   npx cinder dev examples/jwt.ts
//   curl -X POST 'localhost:8787/sign?alg=EdDSA' -d '{"sub":"alice","iat":1700000000}'
//   curl -X POST localhost:8787/verify -d "$TOKEN"
//   curl localhost:8787/jwks
//   curl localhost:8787/roundtrip
//
// The demo keys are public: never use them for anything real.
import {
  SignJWT,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  generateSecret,
  importJWK,
  jwtVerify,
  decodeProtectedHeader,
  createLocalJWKSet,
  type JWK,
  type JWTPayload,
  type CryptoKey,
} from 'jose';

const ALGS = ['HS256', 'RS256', 'ES256', 'EdDSA'] as const;
type Alg = (typeof ALGS)[number];
type AsymmetricAlg = Exclude<Alg, 'HS256'>;

const HS256_SECRET = 'q_AXS6wvVtvfCWI1WqGScYJ_OHlz1voJI210JRERZF0';

const PRIVATE_JWKS: Record<AsymmetricAlg, JWK> = {
  RS256: {
    kty: 'RSA',
    n: 'q2ZtgJeNu6fXCRR4ELKcphx1Toi_WK-7KWlbAJcSnwpffNRBRYozTTd5VYm82aNWHNI_LV3LoVJtl_xDfwGnV-ryZNpWHYkT7AZe2VCt0VQGJ_ndH_Y__Hpt8UnLDAK6btKfeZz-AfE8gDhz9iqJW2lTBFmwGxsAuhhMuNng9aaQVU8FDhh3W3d-4zbZPhtuAo6-oF37WG80IzZiQ2lhQGkF74v5iJU8ZmkMP5pZ-ScnchYExNrrj3O0xlV6M7fAX6YxuWoGWxoF978j9sBA_r2WHFZsXpJY1V3KXLuhSMdwVq2VSy6X6afgYg45TBqTB-pzW2pRYUgOPXb2zpOoAQ',
    e: 'AQAB',
    d: 'AStpfphIJvtNM0NVUng4y5UR2YobL8eJE_Y_aQ0a2xigUjYJwwvrY7rb0UUvm4rE3cTzMhHZ68If7_q0XmQbS201q8Gp9w0ZTIfeiQou-bTWhvqGbVVMInK2nCAIvH56tZqqrJMRQFe8RefmtgusOs5IqxDKa-ytuxNbJ4sycNwsA9PRmoujTbc8qOFTYnV1sejqsnJSlQw5zHVD21EagEmZ-st9x3M9bLdsXYj3GJbaLk4kbNKXXRXXkD_wLsu_F6PX95Hs-PJYUsmyPF6sGLvlLgxW05d9tp3lBAHKS89PCEAHY4WBAZ8WrhWyxMHTOR9k1LALvGW3sLDrGnoawQ',
    p: '0lS1WEsBoK3yej5N9ZzLmj87Rvguf9O2Fi3BT-bvpaS6-32p3qBoqNi4Z-hluWrTFgW7XtuHUztkeva-PU5CIg2NUGFy943zhGsTwgjjhOw3PqW_Q-Ro89sr0f0GGJ3ZbLXV9tb0IJB9p-pQGZmkP7-h33VBymQOYd0FxiGbp0E',
    q: '0J2-IJTVSleX9lixdfEq9Z73IoxGwee9uM7KJDHC9Uy_qRlJbyKEW4zYyFtqwXVXG0nN7UgaEuRS1R1zlod1KeSLypNfg5UAyN5G0KsyrvpH7DcsEOT0tOyJrPBTyPUAZ67wh8TRJZq-xJUK-m7eaiN7Rl3H5ioE4Kx6yfamkME',
    dp: 'HMtT-D5sfp7Rr0KQUauhhABcER8w3ncRWn_xEws-i6K9pmhRtRSov1TMCg2av4OMWlt2h0nugMqEuwDEkogALcFFM1fj8VgRmnM-RTYKT8w20_DE-npuk9PRb_H_v6b8eRF7tUtAKKUfTrmZNaf_AGsvsfPPifGgtm0XuUQolwE',
    dq: 'jGxB2IiWca44efgFrBAkDKVuUPD_h_JHwKhhZK-iPZ_luxtsVMR1N3K9UVBHseUcNyAc30WTV3gdUZq7fW28rfBLMJa2ykl39723CSrTuPh7hUM2BEE5frdhjOlQXIqeNSyKd7lB1wAsvQJeG2iZifRMPHdP4VwTYHB5To0aXYE',
    qi: 'j9vGnjNFjRkLvJGrLHREjLKY_fDSr3gE9owHe6uzGifsgmEddlHQe2THsqdZVl8NflDXHP0LlNGSg0G9grNObdwfY4FTgrVLC1SnSWTDsC7BsgdgQa7f11Yt_6kDQBRl0WVIfZw6I_FpbvqlcH6WvV6kW-YobEonr70lQjXF2LI',
  },
  ES256: {
    kty: 'EC',
    x: 'KusKG3Zq_OZ5A5N1wyjv1Uf-UAsLn0B9D445yIDF_5E',
    y: 'braABQE69ERmY1D8wjKTW_2hx5dHEWqhCnSTySht5PY',
    crv: 'P-256',
    d: 'CIzUhDY4W4mtEKhnuI97Pk3fdLxn9gHCnHh701KbIAg',
  },
  EdDSA: {
    crv: 'Ed25519',
    d: 'szaF9SlGH4WfI3EPswHYG07PlQFqYokSqTnVsbdYhgQ',
    x: 'JrjAvW4S93T_qPN3Eq0N7Skk0-U242kdlJtMnMMrnWE',
    kty: 'OKP',
  },
};

const ISSUER = 'urn:cinder:examples';
const AUDIENCE = 'urn:cinder:clients';

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body, null, 2) + '\n', { status, headers: { 'content-type': 'application/json; charset=utf-8' } });

function publicPart(jwk: JWK): JWK {
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return pub;
}

interface Signer {
  signKey: CryptoKey | Uint8Array;
  verifyKey: CryptoKey | Uint8Array;
  kid?: string;
}

function base64url(text: string): Uint8Array {
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

// Imported once per isolate and kept: importing is the expensive part.
let fixed: Promise<Record<Alg, Signer>> | null = null;
function fixedKeys(): Promise<Record<Alg, Signer>> {
  fixed ??= (async () => {
    const out = { HS256: { signKey: base64url(HS256_SECRET), verifyKey: base64url(HS256_SECRET) } } as Record<Alg, Signer>;
    for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
      const jwk = PRIVATE_JWKS[alg];
      out[alg] = {
        signKey: (await importJWK(jwk, alg)) as CryptoKey,
        verifyKey: (await importJWK(publicPart(jwk), alg)) as CryptoKey,
        kid: await calculateJwkThumbprint(publicPart(jwk)),
      };
    }
    return out;
  })();
  return fixed;
}

async function jwks(): Promise<{ keys: JWK[] }> {
  const keys: JWK[] = [];
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    const pub = publicPart(PRIVATE_JWKS[alg]);
    keys.push({ ...pub, alg, use: 'sig', kid: await calculateJwkThumbprint(pub) });
  }
  return { keys };
}

function isAlg(value: string | null): value is Alg {
  return ALGS.includes(value as Alg);
}

async function sign(alg: Alg, claims: JWTPayload, key: CryptoKey | Uint8Array, kid?: string): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT', ...(kid ? { kid } : {}) }).setIssuer(ISSUER).setAudience(AUDIENCE);
  if (claims.iat === undefined) jwt.setIssuedAt();
  if (claims.exp === undefined) jwt.setExpirationTime('2h');
  return jwt.sign(key);
}

/** Sign and verify with freshly generated keys, and check that tampering and expiry are caught. */
async function roundTrip(alg: Alg): Promise<Record<string, unknown>> {
  let signKey: CryptoKey | Uint8Array;
  let verifyKey: CryptoKey | Uint8Array;
  let publicJwk: JWK | null = null;
  if (alg === 'HS256') {
    signKey = verifyKey = (await generateSecret('HS256')) as CryptoKey;
  } else {
    const pair = await generateKeyPair(alg, { extractable: true });
    signKey = pair.privateKey;
    verifyKey = pair.publicKey;
    publicJwk = await exportJWK(pair.publicKey);
  }
  const token = await sign(alg, { sub: 'round-trip' }, signKey);
  const { payload, protectedHeader } = await jwtVerify(token, verifyKey, { issuer: ISSUER, audience: AUDIENCE, algorithms: [alg] });
  const [h, p, s] = token.split('.');
  const tampered = `${h}.${p.slice(0, -2)}${p.endsWith('A') ? 'B' : 'A'}${p.slice(-1)}.${s}`;
  const expired = await sign(alg, { sub: 'old', iat: 1_000_000_000, exp: 1_000_000_600 }, signKey);
  return {
    verified: payload.sub === 'round-trip' && protectedHeader.alg === alg,
    tamperedRejected: await rejection(jwtVerify(tampered, verifyKey, { algorithms: [alg] })),
    expiredRejected: await rejection(jwtVerify(expired, verifyKey, { algorithms: [alg] })),
    publicKeyType: publicJwk ? publicJwk.kty : 'oct',
  };
}

async function rejection(promise: Promise<unknown>): Promise<string | null> {
  try {
    await promise;
    return null;
  } catch (error) {
    return (error as { code?: string }).code ?? (error as Error).name;
  }
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const keys = await fixedKeys();
    if (request.method === 'GET' && url.pathname === '/') {
      return new Response('JWT with jose on crypto.subtle: POST /sign?alg=HS256|RS256|ES256|EdDSA, POST /verify, GET /jwks, GET /roundtrip\n');
    }
    if (request.method === 'GET' && url.pathname === '/jwks') return json(await jwks());
    if (request.method === 'POST' && url.pathname === '/sign') {
      const alg = url.searchParams.get('alg') ?? 'HS256';
      if (!isAlg(alg)) return json({ error: `unsupported alg ${alg}` }, 400);
      let claims: JWTPayload;
      try {
        claims = (await request.json()) as JWTPayload;
      } catch {
        return json({ error: 'body must be a JSON object of claims' }, 400);
      }
      const token = await sign(alg, claims, keys[alg].signKey, keys[alg].kid);
      return json({ alg, token });
    }
    if (request.method === 'POST' && url.pathname === '/verify') {
      const token = (await request.text()).trim();
      let alg: string | undefined;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch {
        return json({ valid: false, error: 'ERR_JWS_INVALID' }, 400);
      }
      try {
        const verified =
          alg === 'HS256'
            ? await jwtVerify(token, keys.HS256.verifyKey, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'] })
            : await jwtVerify(token, createLocalJWKSet(await jwks()), { issuer: ISSUER, audience: AUDIENCE });
        return json({ valid: true, header: verified.protectedHeader, payload: verified.payload });
      } catch (error) {
        return json({ valid: false, error: (error as { code?: string }).code ?? String(error) }, 401);
      }
    }
    if (request.method === 'GET' && url.pathname === '/roundtrip') {
      const results: Record<string, unknown> = {};
      for (const alg of ALGS) results[alg] = await roundTrip(alg);
      return json(results);
    }
    return json({ error: 'not found' }, 404);
  },
};
