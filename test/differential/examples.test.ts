// Each example, bundled once, runs in Cinder and in workerd; the same requests go to both and the
// answers must agree (status, headers less per-run ones, body). A difference is either a bug to
// fix or a documented choice (docs/compat.md), listed in ACCEPTED below with its reason.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../helpers/server.js';
import { bundleExamples, compare, describeRequest, send, startCinder, startWorkerd, type Bundled, type DiffRequest, type Difference, type Example, type Workerd } from './harness.js';

const EXAMPLES: Example[] = [
  { name: 'hello', entry: 'examples/hello.js' },
  { name: 'hono-app', entry: 'examples/hono-app.ts' },
  { name: 'itty-router', entry: 'examples/itty-router.ts' },
  { name: 'jwt', entry: 'examples/jwt.ts' },
  // Not an example: a probe of crypto.subtle, section by section, with deterministic answers.
  { name: 'crypto-probe', entry: 'test/differential/workers/crypto-probe.js' },
  // Not an example: where eval and new Function work (startup) and where they are refused.
  { name: 'eval-probe', entry: 'test/differential/workers/eval-probe.js' },
  // Not an example: WebAssembly compiled from bytes at startup and in a handler.
  { name: 'wasm-probe', entry: 'test/differential/workers/wasm-probe.js' },
  // Not an example: a probe of nodejs_compat's modules, section by section.
  { name: 'node-probe', entry: 'test/differential/workers/node-probe.js', compatibilityFlags: ['nodejs_compat'] },
  // Not an example: a WorkerEntrypoint default export and the cloudflare:workers module.
  { name: 'entrypoint-probe', entry: 'test/differential/workers/entrypoint-probe.js' },
  // Not an example: Text, Data and CompiledWasm modules made by wrangler's default module rules.
  { name: 'modules-probe', entry: 'test/differential/workers/modules-probe.js' },
  // Not an example: HTMLRewriter's handlers, selectors and mutations, section by section.
  { name: 'html-rewriter-probe', entry: 'test/differential/workers/html-rewriter-probe.js' },
];

const rid = { 'x-request-id': 'req-1' };
const json = (body: unknown) => ({ headers: { 'content-type': 'application/json', ...rid }, body: JSON.stringify(body) });
const origin = { origin: 'https://example.com' };
const boundary = '----cinder-diff-boundary';
const multipart = [
  `--${boundary}`,
  'Content-Disposition: form-data; name="title"',
  '',
  'hello',
  `--${boundary}`,
  'Content-Disposition: form-data; name="tag"',
  '',
  'a',
  `--${boundary}`,
  'Content-Disposition: form-data; name="tag"',
  '',
  'b',
  `--${boundary}--`,
  '',
].join('\r\n');

const PROBE_SECTIONS = ['interfaces', 'digest', 'hmac', 'aes', 'derivation', 'ec', 'ed25519', 'rsa', 'wrap', 'webidl', 'extras'];

const REQUESTS: Record<string, DiffRequest[]> = {
  'crypto-probe': PROBE_SECTIONS.map((section) => ({ path: `/${section}` })),

  'eval-probe': [{ path: '/' }, { path: '/again' }],

  'wasm-probe': [{ path: '/' }, { path: '/again' }],
  'node-probe': ['buffer', 'crypto', 'cryptoKeys', 'cryptoCurves', 'cryptoAgree', 'cryptoKdf', 'events', 'util', 'path', 'url', 'string_decoder', 'als', 'stream', 'assert'].map((section) => ({ path: `/${section}` })),
  'modules-probe': [{ path: '/text' }, { path: '/data' }, { path: '/wasm' }, { path: '/nope' }],

  'entrypoint-probe': [{ path: '/shape' }, { method: 'POST', path: '/wait', body: 'x' }, { path: '/nope' }],
  'html-rewriter-probe': ['attrs', 'content', 'replace', 'text', 'comments', 'document', 'selectors', 'async', 'endtag', 'handlers', 'chunked', 'headers', 'length-on-wire', 'errors'].map((section) => ({ path: `/${section}` })),

  hello: [{ path: '/' }, { path: '/some/path?x=1&y=%20' }, { method: 'POST', path: '/submit', body: 'ignored' }, { method: 'HEAD', path: '/' }],

  'hono-app': [
    { path: '/', headers: rid },
    { method: 'HEAD', path: '/', headers: rid },
    { path: '/api/users/42?field=name&field=email&verbose=1', headers: rid },
    { path: '/api/users/7', headers: { ...rid, ...origin }, label: 'CORS, allowed origin' },
    { path: '/api/users/7', headers: { ...rid, origin: 'https://evil.example' }, label: 'CORS, other origin' },
    { method: 'OPTIONS', path: '/api/echo', headers: { ...rid, ...origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }, label: 'preflight' },
    { method: 'POST', path: '/api/echo', ...json({ hello: 'world', n: [1, 2, 3] }), label: 'JSON body' },
    { method: 'POST', path: '/api/echo', headers: { 'content-type': 'application/json', ...rid }, body: '{"broken":', label: 'invalid JSON' },
    { method: 'POST', path: '/api/form', headers: { 'content-type': 'application/x-www-form-urlencoded', ...rid }, body: 'a=1&b=two&b=three&c=%C3%A9' },
    { method: 'POST', path: '/api/form', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, ...rid }, body: multipart, label: 'multipart' },
    { path: '/etag', headers: rid },
    { path: '/etag', headers: { ...rid, 'if-none-match': '"c5ab6b8a3c0e2a95b7cfa6ae0a8b5d1e0fd7f6d1"' }, label: 'stale ETag' },
    { path: '/secure', headers: rid },
    { path: '/admin/stats', headers: rid, label: 'no credentials' },
    { path: '/admin/stats', headers: { ...rid, authorization: `Basic ${Buffer.from('admin:hunter2').toString('base64')}` }, label: 'basic auth' },
    { path: '/admin/stats', headers: { ...rid, authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}` }, label: 'wrong password' },
    { path: '/stream', headers: rid },
    { path: '/sse', headers: rid },
    { path: '/teapot', headers: rid },
    { path: '/error', headers: rid },
    { path: '/no/such/page', headers: rid },
  ],

  'itty-router': [
    { path: '/' },
    { path: '/hello/world' },
    { path: '/hello/caf%C3%A9' },
    { path: '/numbers' },
    { path: '/search?q=cinder&tag=a&tag=b&empty=' },
    { path: '/todos/4' },
    { path: '/todos/abc', label: 'StatusError 400' },
    { path: '/todos/500', label: 'error(404)' },
    { method: 'POST', path: '/todos', ...json({ title: 'write tests' }) },
    { method: 'POST', path: '/todos', ...json({ nope: true }), label: 'StatusError 422' },
    { path: '/page' },
    { path: '/redirect' },
    { path: '/boom', label: 'thrown Error' },
    { path: '/missing' },
    { method: 'OPTIONS', path: '/todos', headers: { ...origin, 'access-control-request-method': 'POST' }, label: 'preflight' },
    { path: '/hello/cors', headers: origin, label: 'corsify' },
  ],

  jwt: [
    { path: '/' },
    { path: '/jwks' },
    { path: '/roundtrip' },
    // RSASSA-PKCS1-v1_5, HMAC and Ed25519 signatures are deterministic: the tokens must match.
    ...(['HS256', 'RS256', 'EdDSA'] as const).map((alg) => ({ method: 'POST', path: `/sign?alg=${alg}`, body: JSON.stringify({ sub: 'alice', iat: 1700000000, exp: 4102444800, role: 'admin' }) })),
    // ECDSA signatures are randomized: compare all but the signature.
    { method: 'POST', path: '/sign?alg=ES256', body: JSON.stringify({ sub: 'bob', iat: 1700000000, exp: 4102444800 }), normalizeBody: (b) => b.replace(/("token": "[^.]+\.[^.]+\.)[^"]+"/, '$1<signature>"') },
    { method: 'POST', path: '/sign?alg=PS256', body: '{}', label: 'unsupported alg' },
    { method: 'POST', path: '/sign?alg=HS256', body: 'not json', label: 'bad claims' },
    { method: 'POST', path: '/verify', body: 'not-a-token', label: 'garbage token' },
  ],
};

// Accepted differences, each explained in docs/compat.md. Keyed by "<example> <request>".
const ACCEPTED: Record<string, Partial<Record<Difference['field'], string>>> = {};

/** Known framing differences seen (see FRAMING_KNOWN), by kind. */
const knownFraming = new Map<string, number>();
let bundled: Bundled[];
let cinder: TestServer;
let workerd: Workerd;

beforeAll(async () => {
  bundled = await bundleExamples(EXAMPLES);
  [cinder, workerd] = await Promise.all([startCinder(bundled), startWorkerd(bundled)]);
}, 60_000);

afterAll(async () => {
  if (knownFraming.size) console.info(`differential: known framing differences (docs/compat.md): ${JSON.stringify(Object.fromEntries(knownFraming))}`);
  await Promise.all([cinder?.close(), workerd?.close()]);
});

async function differences(name: string, requests: DiffRequest[]): Promise<Difference[]> {
  const found: Difference[] = [];
  for (const req of requests) {
    const [c, w] = await Promise.all([send(cinder.url, name, req), send(workerd.url(name), name, req)]);
    for (const d of compare(name, req, c, w, knownFraming)) {
      const accepted = ACCEPTED[`${name} ${describeRequest(req)}`]?.[d.field];
      if (!accepted) found.push(d);
    }
  }
  return found;
}

describe('Cinder answers as workerd does', () => {
  for (const example of EXAMPLES) {
    it(example.name, async () => {
      expect(await differences(example.name, REQUESTS[example.name])).toEqual([]);
    });
  }

  it('jwt: tokens signed by either runtime verify in both', async () => {
    const claims = JSON.stringify({ sub: 'carol', iat: 1700000000, exp: 4102444800 });
    const requests: DiffRequest[] = [];
    for (const alg of ['HS256', 'RS256', 'ES256', 'EdDSA']) {
      for (const signer of [cinder.url, workerd.url('jwt')]) {
        const signed = await send(signer, 'jwt', { method: 'POST', path: `/sign?alg=${alg}`, body: claims });
        expect(signed.status).toBe(200);
        const token = JSON.parse(signed.body).token as string;
        requests.push({ method: 'POST', path: '/verify', body: token, label: `${alg} from ${signer === cinder.url ? 'cinder' : 'workerd'}` });
        // The same token with its payload changed: both must refuse it the same way.
        const [h, p, s] = token.split('.');
        const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'mallory' })).toString('base64url');
        requests.push({ method: 'POST', path: '/verify', body: `${h}.${forged}.${s}`, label: `forged ${alg}` });
      }
    }
    expect(await differences('jwt', requests)).toEqual([]);
    const verified = await send(cinder.url, 'jwt', requests[0]);
    expect(JSON.parse(verified.body)).toMatchObject({ valid: true, payload: { sub: 'carol' } });
  });
});
