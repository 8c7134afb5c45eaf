import { it, expect } from 'vitest';
import { startTestServer } from '../helpers/server.js';
it('probe', async () => {
  const s = await startTestServer({ w: { code: `export default { async fetch(req, env) {
    const out = [];
    try { await env.__probe } catch (e) { out.push('x') }
    return new Response(JSON.stringify(out));
  } }` } });
  s.runtime.registerOp('probe', async (call, args) => { const e = new TypeError('bad thing'); throw e; });
  const r = await s.request('w', '/');
  console.log(r.status, r.text);
  await s.close();
});
