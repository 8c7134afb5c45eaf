// A URL shortener on Workers KV. Each link is one key, "link:<id>", whose value is the target
// URL; the URL and creation time also go in the key's metadata, so listing links needs one
// list() call rather than a get per link. Run it with:
//
//   npx cinder dev examples/url-shortener.js --kv LINKS
//   curl -X POST localhost:8787/links -d '{"url":"https://example.com/a/long/path"}'
//        -> 201 {"id":"x7Kq2mP","short":"http://localhost:8787/x7Kq2mP","url":"..."}
//   curl -i localhost:8787/x7Kq2mP            -> 302, Location: https://example.com/a/long/path
//   curl localhost:8787/links                 -> {"links":[...],"cursor":null}
//   curl -X DELETE localhost:8787/links/x7Kq2mP
//
// Links may expire: {"url": "...", "ttl": 3600} (seconds; KV's minimum is 60).
const PREFIX = 'link:';
const ID_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ID_SHAPE = /^[0-9A-Za-z_-]{3,64}$/;
// Keeps the URL small enough to also fit in the key's metadata (1024 bytes at most).
const MAX_URL_LENGTH = 900;

const json = (body, status = 200, headers = {}) =>
  new Response(JSON.stringify(body) + '\n', { status, headers: { 'content-type': 'application/json', ...headers } });

function randomId(length = 7) {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  // 256 % 62 != 0, so this is very slightly biased; harmless for short links.
  return Array.from(bytes, (b) => ID_ALPHABET[b % ID_ALPHABET.length]).join('');
}

function parseTarget(raw) {
  if (typeof raw !== 'string' || raw.length > MAX_URL_LENGTH) return null;
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

async function create(request, env, origin) {
  let body;
  try {
    body = await request.json();
  } catch {
    return json({ error: 'send JSON: {"url": "https://..."}' }, 400);
  }
  const url = parseTarget(body?.url);
  if (!url) return json({ error: `"url" must be an http(s) URL of at most ${MAX_URL_LENGTH} characters` }, 400);
  if (body.id !== undefined && (typeof body.id !== 'string' || !ID_SHAPE.test(body.id))) {
    return json({ error: '"id" must be 3-64 letters, digits, "-" or "_"' }, 400);
  }
  let id = body.id ?? randomId();
  // A chosen id must be free; a random one is retried on the (rare) collision. Two requests
  // racing for the same chosen id can both succeed: KV has no compare-and-set.
  while ((await env.LINKS.get(PREFIX + id)) !== null) {
    if (body.id !== undefined) return json({ error: `id "${id}" is taken` }, 409);
    id = randomId();
  }
  const options = { metadata: { url, created: Date.now() } };
  if (body.ttl !== undefined) options.expirationTtl = body.ttl;
  try {
    await env.LINKS.put(PREFIX + id, url, options);
  } catch (error) {
    return json({ error: error.message }, 400);
  }
  return json({ id, short: `${origin}/${id}`, url }, 201);
}

async function list(env, searchParams) {
  const page = await env.LINKS.list({ prefix: PREFIX, limit: Number(searchParams.get('limit')) || 100, cursor: searchParams.get('cursor') || undefined });
  const links = page.keys.map((key) => ({ id: key.name.slice(PREFIX.length), url: key.metadata?.url, created: key.metadata?.created, expiration: key.expiration }));
  return json({ links, cursor: page.list_complete ? null : page.cursor });
}

export default {
  async fetch(request, env) {
    if (!env.LINKS) return json({ error: 'bind a KV namespace as LINKS (cinder dev --kv LINKS)' }, 500);
    const url = new URL(request.url);
    const path = url.pathname;
    if (path === '/links' && request.method === 'POST') return create(request, env, url.origin);
    if (path === '/links' && request.method === 'GET') return list(env, url.searchParams);
    if (path.startsWith('/links/') && request.method === 'DELETE') {
      await env.LINKS.delete(PREFIX + decodeURIComponent(path.slice('/links/'.length)));
      return new Response(null, { status: 204 });
    }
    const id = decodeURIComponent(path.slice(1));
    if (request.method === 'GET' && ID_SHAPE.test(id)) {
      // Links rarely change: let this node reuse a read for 5 minutes.
      const target = await env.LINKS.get(PREFIX + id, { cacheTtl: 300 });
      if (target) return new Response(null, { status: 302, headers: { location: target } });
      return json({ error: `no link "${id}"` }, 404);
    }
    return json({ error: 'POST /links, GET /links, GET /:id, DELETE /links/:id' }, 404);
  },
};
