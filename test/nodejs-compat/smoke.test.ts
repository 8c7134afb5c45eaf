import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({
    w: { code: `import { Buffer } from 'node:buffer'; import { createHash } from 'node:crypto'; import { AsyncLocalStorage } from 'node:async_hooks';
      const als = new AsyncLocalStorage();
      export default { async fetch() {
        return als.run('x', async () => { await new Promise(r => setTimeout(r, 1)); return Response.json({ b: Buffer.from('hi').toString('hex'), h: createHash('sha256').update('abc').digest('hex'), s: als.getStore(), g: typeof process }); });
      } }`, compatibilityFlags: ['nodejs_compat'], compatibilityDate: '2025-01-01' },
  });
});
afterAll(() => server.close());

it('works', async () => {
  const res = await server.request('w');
  console.log(res.status, res.text, server.logs.slice(-3));
  expect(res.status).toBe(200);
});
