// Not an example: HTMLRewriter section by section (element, attribute, text, comment, doctype and
// end handlers, async handlers, selectors, end tags, chunked input), answers compared with workerd.
const page = `<!DOCTYPE html>
<html><head><title>Probe</title><!-- a comment --></head>
<body class="main">
  <div id="app" data-x="y"><p>first</p><p class="note">second <b>bold</b> tail</p><p>third</p></div>
  <a href="/one">one</a> <a href="https://example.com/two" rel="x">two</a>
  <img src="/i.png" alt="i"><br/>
  <script>var x = "<p>not html</p>";</script>
  <ul><li>a</li><li>b</li><li>c</li></ul>
</body></html>`;

function html(body, init) {
  return new Response(body, { headers: { 'content-type': 'text/html; charset=utf-8' }, ...init });
}

const sections = {
  attrs: () =>
    new HTMLRewriter()
      .on('a[href]', {
        element(el) {
          const href = el.getAttribute('href');
          if (href.startsWith('/')) el.setAttribute('href', 'https://cdn.example' + href);
          el.setAttribute('data-seen', String(el.hasAttribute('rel')));
          el.removeAttribute('rel');
        },
      })
      .on('img', { element(el) { el.setAttribute('loading', 'lazy'); el.tagName = 'picture'; } }),
  content: () =>
    new HTMLRewriter()
      .on('#app', { element(el) { el.prepend('<h1>Title</h1>', { html: true }); el.append('<em>& text</em>'); } })
      .on('p.note', { element(el) { el.before('<hr>', { html: true }); el.after('after'); } })
      .on('li', { element(el) { if (el.getAttribute('x') === null) el.setInnerContent('<i>item</i>', { html: true }); } })
      .on('br', { element(el) { el.remove(); } })
      .on('b', { element(el) { el.removeAndKeepContent(); } }),
  replace: () =>
    new HTMLRewriter()
      .on('title', { element(el) { el.replace('<title>Replaced</title>', { html: true }); } })
      .on('script', { element(el) { el.replace('[script removed]'); } }),
  text: () => {
    return new HTMLRewriter()
      .on('p', { text(t) { if (t.text) t.replace(t.text.toUpperCase()); } })
      .on('li', { text(t) { if (t.lastInTextNode) t.after('!'); } });
  },
  comments: () =>
    new HTMLRewriter()
      .on('head', { comments(c) { c.text = c.text.trim() + ' (seen)'; } })
      .onDocument({ comments(c) { if (c.text.includes('seen')) c.after('<!-- extra -->', { html: true }); } }),
  document: () => {
    const seen = [];
    return new HTMLRewriter().onDocument({
      doctype(d) { seen.push(`doctype:${d.name}:${d.publicId}:${d.systemId}`); },
      end(end) { end.append(`<!-- ${seen.join(',')} -->`, { html: true }); },
    });
  },
  selectors: () => {
    const hits = [];
    const mark = (name) => ({ element(el) { hits.push(name + ':' + el.tagName); el.setAttribute('data-hit', name); } });
    return new HTMLRewriter()
      .on('div > p', mark('child'))
      .on('p:nth-child(2)', mark('nth'))
      .on('[data-x="y"]', mark('attr'))
      .on('body.main', mark('class'))
      .on('ul li:first-child', mark('first'))
      .on('a[href^="https"]', mark('prefix'))
      .onDocument({ end(end) { end.append('<!--' + hits.join(' ') + '-->', { html: true }); } });
  },
  async: () =>
    new HTMLRewriter().on('p', {
      async element(el) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        el.setAttribute('data-async', 'yes');
      },
    }),
  endtag: () =>
    new HTMLRewriter().on('div', {
      element(el) {
        el.onEndTag((end) => { end.before('<footer>end of ' + end.name + '</footer>', { html: true }); });
      },
    }),
  handlers: () => {
    // Handler objects are called as methods: `this` is the handler object.
    const counter = { count: 0, element() { this.count++; } };
    return new HTMLRewriter().on('p', counter).onDocument({ end(end) { end.append('<!-- p count ' + counter.count + ' -->', { html: true }); } });
  },
};

export default {
  async fetch(request) {
    const name = new URL(request.url).pathname.slice(1);
    if (name === 'chunked') {
      // The input arrives in small chunks that split tags and text.
      const bytes = new TextEncoder().encode(page.repeat(20));
      const stream = new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7));
          controller.close();
        },
      });
      return new HTMLRewriter().on('a', { element(el) { el.setAttribute('data-chunked', '1'); } }).transform(html(stream));
    }
    if (name === 'headers') {
      const res = new HTMLRewriter().on('p', { element() {} }).transform(html(page, { status: 201, headers: { 'content-type': 'text/html', 'content-length': String(page.length), 'x-kept': 'yes' } }));
      return new Response(JSON.stringify({ status: res.status, length: res.headers.get('content-length'), kept: res.headers.get('x-kept') }));
    }
    if (name === 'length-on-wire') {
      return new HTMLRewriter().on('p', { element(el) { el.append('longer'); } }).transform(html(page, { headers: { 'content-type': 'text/html', 'content-length': String(new TextEncoder().encode(page).length) } }));
    }
    if (name === 'errors') {
      const out = [];
      try { new HTMLRewriter().on('p', null).on('p', undefined).onDocument(null); out.push('null handlers ok'); } catch (e) { out.push(e.constructor.name); }
      try { new HTMLRewriter().on('p', 5); } catch (e) { out.push(e.constructor.name); }
      try { new HTMLRewriter().transform('not a response'); } catch (e) { out.push(e.constructor.name); }
      return new Response(out.join(','));
    }
    const make = sections[name];
    if (!make) return new Response('unknown section', { status: 404 });
    return make().transform(html(page));
  },
};
