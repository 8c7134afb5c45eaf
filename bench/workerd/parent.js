// workerd side of the cold-start bench. Requests to /cold/<worker>/<n>/<path> load worker
// <worker> through the Worker Loader binding under the id "<worker>-<n>": a fresh id means a
// brand-new isolate (the code is compiled from source and its top level runs), which is
// workerd's cold start. /warm/<worker>/<path> reuses one id, so it measures a loaded isolate.
import helloSource from 'hello-src';
import honoSource from 'hono-src';
import apiSource from 'api-src';

const SOURCES = { hello: helloSource, hono: honoSource, api: apiSource };

function codeFor(worker) {
  return () => ({
    compatibilityDate: '2025-09-01',
    mainModule: 'worker.js',
    modules: { 'worker.js': SOURCES[worker] },
    // Nothing the bench workers do leaves the isolate.
    globalOutbound: null,
  });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const parts = url.pathname.split('/');
    // ["", "cold", worker, n, ...rest] or ["", "warm", worker, ...rest]
    const mode = parts[1];
    const worker = parts[2];
    if (!SOURCES[worker] || (mode !== 'cold' && mode !== 'warm')) return new Response('bad bench path\n', { status: 404 });
    const id = mode === 'cold' ? `${worker}-${parts[3]}` : `${worker}-warm`;
    const rest = '/' + parts.slice(mode === 'cold' ? 4 : 3).join('/') + url.search;
    const stub = env.LOADER.get(id, codeFor(worker));
    return stub.getEntrypoint().fetch(new Request(`http://${worker}.bench${rest}`, request));
  },
};
