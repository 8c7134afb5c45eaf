// Crypto key generation is host work on Node's shared threadpool: four RSA-6144 generations
// stalled a neighbour's digest for seconds, and 16,384-bit keys were allowed. Now moduli are capped
// at 4096 bits, generations are gated (a few at once in the process, one at a time per isolate,
// a short queue) and their time is metered to the invocation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type { InvocationRecord } from '../../src/runtime/worker-instance.js';

let server: TestServer;
const records: InvocationRecord[] = [];
const gen = (bits: number) => `crypto.subtle.generateKey({ name: 'RSA-PSS', hash: 'SHA-256', modulusLength: ${bits}, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['sign'])`;

beforeAll(async () => {
  server = await startTestServer({
    huge: `export default { async fetch() { try { await ${gen(8192)}; return new Response('made') } catch (e) { return new Response(e.name + ': ' + e.message) } } }`,
    many: {
      limits: { cpuMs: 60_000 },
      code: `export default { async fetch() {
        const out = await Promise.all(Array.from({ length: 8 }, () => ${gen(2048)}.then(() => 'ok', (e) => e.name + ': ' + e.message)));
        return Response.json(out);
      } }`,
    },
    neighbour: `export default { async fetch() { const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode('x')); return new Response(String(new Uint8Array(d)[0])) } }`,
  });
  server.runtime.onInvocation((r) => records.push(r));
});
afterAll(() => server.close());

/** A neighbour request that counts as failed unless answered 200 within `ms`. */
async function neighbourOk(ms: number): Promise<boolean> {
  const timeout = new Promise<null>((r) => setTimeout(() => r(null), ms));
  const res = await Promise.race([server.request('neighbour'), timeout]);
  return res !== null && res.status === 200;
}

describe('RSA key generation', () => {
  it('refuses moduli over 4096 bits with an OperationError', async () => {
    expect((await server.request('huge')).text).toBe('OperationError: RSA key generation is limited to 4096-bit moduli on this server, but 8192 was requested.');
  });

  it('queues a burst per isolate, refuses past the queue, meters the time to the invocation, and leaves the neighbour alone', async () => {
    records.length = 0;
    const burst = server.request('many');
    const neighbour = await Promise.all(Array.from({ length: 20 }, (_, i) => new Promise((r) => setTimeout(r, i * 20)).then(() => neighbourOk(3_000))));
    const out = JSON.parse((await burst).text) as string[];
    expect(out.filter((x) => x === 'ok')).toHaveLength(5);
    expect(out.filter((x) => /^OperationError: Too many RSA key generations in progress/.test(x))).toHaveLength(3);
    expect(neighbour.filter((ok) => !ok)).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 50));
    const record = records.find((r) => r.worker === 'many');
    expect(record!.hostWorkMs).toBeGreaterThan(10);
  });
});
