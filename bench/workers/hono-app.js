// The "realistic" worker: a Hono API that renders syntax-highlighted code, bundled by esbuild with
// highlight.js and all of its ~190 language grammars (the large dependency) into one module of
// about 1 MB. Top-level evaluation registers every grammar; a request to /api/highlight compiles
// one grammar and highlights a snippet, as a real cold request to such an app would.
import { Hono } from 'hono';
import hljs from 'highlight.js';

const SAMPLE = `export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const hits = Number(await env.KV.get(pathname)) + 1;
    await env.KV.put(pathname, String(hits));
    return Response.json({ pathname, hits });
  },
};`;

const app = new Hono();

app.get('/', (c) => c.text(`highlight service: ${hljs.listLanguages().length} languages\n`));

app.get('/api/languages', (c) => c.json({ languages: hljs.listLanguages() }));

app.get('/api/highlight', (c) => {
  const language = c.req.query('lang') ?? 'javascript';
  if (!hljs.getLanguage(language)) return c.json({ error: `unknown language ${language}` }, 400);
  const code = c.req.query('code') ?? SAMPLE;
  const { value, relevance } = hljs.highlight(code, { language });
  c.header('x-relevance', String(relevance));
  return c.html(`<pre><code class="hljs language-${language}">${value}</code></pre>\n`);
});

app.get('/users/:id', (c) => c.json({ id: c.req.param('id'), name: `user ${c.req.param('id')}` }));

app.notFound((c) => c.text('not found\n', 404));

export default app;
