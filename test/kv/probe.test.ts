import { it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { KVService, MemoryBackend, installKV } from '../../bindings/kv/index.js';
it('probe', async () => {
  const s = await startTestServer({ w: { code: `export default { async fetch(req, env) {
    const out = [];
    await env.KV.put('a', 'hello', { metadata: { x: 1 } });
    out.push(await env.KV.get('a'));
    out.push(await env.KV.getWithMetadata('a'));
    out.push(String(new Uint8Array(await env.KV.get('a', 'arrayBuffer'))));
    try { await env.KV.put('a', 'x', { expirationTtl: 5 }) } catch (e) { out.push([e.name, e.message, e instanceof Error, e.constructor === Error, e.stack]) }
    try { await env.KV.get('') } catch (e) { out.push([e.name, e.message, e instanceof TypeError]) }
    try { await new env.KV.constructor(Symbol(), 'X') } catch (e) { out.push([e.name, e.message]) }
    out.push(await env.KV.list());
    out.push([...(await env.KV.get(['a', 'b']))]);
    return new Response(JSON.stringify(out));
  } }`, bindings: { KV: { type: 'kv_namespace', namespace_id: 'ns1' } } } });
  installKV(s.runtime, new KVService({ backend: new MemoryBackend() }));
  const r = await s.request('w', '/');
  console.log(r.status, r.text);
  await s.close();
});
