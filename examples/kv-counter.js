// A visit counter on Workers KV: every path counts its own visits, and the count outlives the
// server (with `cinder serve`, KV lives in SQLite under --data). Run it with:
//
//   npx cinder dev examples/kv-counter.js --kv COUNTER
//   curl localhost:8787/hello     -> {"path":"/hello","count":1}
//   curl -X DELETE localhost:8787/hello
//
// KV is eventually consistent and has no atomic increment: two requests at the same moment can
// both read 4 and both write 5. That is fine for a visit counter; for exact counts, use a store
// with transactions.
const json = (body, status = 200) =>
  new Response(JSON.stringify(body) + '\n', { status, headers: { 'content-type': 'application/json' } });

export default {
  async fetch(request, env) {
    if (!env.COUNTER) return json({ error: 'bind a KV namespace as COUNTER (cinder dev --kv COUNTER)' }, 500);
    const { pathname } = new URL(request.url);
    const key = `count:${pathname}`;
    switch (request.method) {
      case 'GET': {
        const count = Number((await env.COUNTER.get(key)) ?? 0) + 1;
        await env.COUNTER.put(key, String(count));
        return json({ path: pathname, count });
      }
      case 'DELETE':
        await env.COUNTER.delete(key);
        return json({ path: pathname, count: 0 });
      default:
        return json({ error: 'use GET or DELETE' }, 405);
    }
  },
};
