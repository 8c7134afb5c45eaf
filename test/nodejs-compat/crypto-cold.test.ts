// What a JWT library does on a worker's first request, in a fresh isolate, under the default CPU
// limit (50 ms): verify or sign once with a key read from PEM. The curves build their tables and
// RSA runs on BigInt inside the isolate, all charged to the request; each must fit. The work is
// what must fit, not this machine's milliseconds: on a machine slower than the one the limit was
// checked on (CI's, or this one loaded), the limit grows by how much slower it runs a known loop
// (es256sign is ~26 ms here: twice as slow would cross 50 ms without doing more work).
import * as crypto from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { machineSlowness } from '../helpers/burn.js';
import { DEFAULT_LIMITS } from '../../src/model/limits.js';
const compat = { compatibilityDate: '2025-05-01', compatibilityFlags: ['nodejs_compat'] };
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = crypto.generateKeyPairSync('ed25519');
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const msg = Buffer.from('hello');
const cases: Record<string, string> = {
  es256: `const k = crypto.createPublicKey(${JSON.stringify(ec.publicKey.export({ type: 'spki', format: 'pem' }))}); ok = crypto.verify('sha256', Buffer.from('hello'), k, Buffer.from('${crypto.sign('sha256', msg, ec.privateKey).toString('base64')}', 'base64'));`,
  es256sign: `ok = crypto.sign('sha256', Buffer.from('hello'), ${JSON.stringify(ec.privateKey.export({ type: 'pkcs8', format: 'pem' }))}).length > 0;`,
  ed25519: `ok = crypto.verify(null, Buffer.from('hello'), ${JSON.stringify(ed.publicKey.export({ type: 'spki', format: 'pem' }))}, Buffer.from('${crypto.sign(null, msg, ed.privateKey).toString('base64')}', 'base64'));`,
  rs256sign: `ok = crypto.sign('sha256', Buffer.from('hello'), ${JSON.stringify(rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }))}).length === 256;`,
  rs256verify: `ok = crypto.verify('sha256', Buffer.from('hello'), ${JSON.stringify(rsa.publicKey.export({ type: 'spki', format: 'pem' }))}, Buffer.from('${crypto.sign('sha256', msg, rsa.privateKey).toString('base64')}', 'base64'));`,
};
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({});
});
afterAll(() => server?.close());
for (const [name, body] of Object.entries(cases)) {
  it(`${name}: the first request of a fresh isolate completes under the default CPU limit`, async () => {
    // Measured right before the deploy (a fresh isolate) and its first request, on the same machine.
    const slowness = machineSlowness();
    const cpuMs = Math.ceil(DEFAULT_LIMITS.cpuMs * slowness);
    server.deploy(name, { code: `import * as crypto from 'node:crypto'; export default { fetch() { let ok; ${body} return new Response(String(ok)); } }`, ...compat, limits: { cpuMs } });
    const res = await server.request(name, '/');
    const used = server.logs.find((line) => line.worker === name && typeof line.cpu_ms === 'number')?.cpu_ms;
    expect(res.status, `${res.text} (used ${used} ms of ${cpuMs}: this machine runs ${slowness.toFixed(2)}x slower than the reference)`).toBe(200);
    expect(res.text).toBe('true');
  });
}
