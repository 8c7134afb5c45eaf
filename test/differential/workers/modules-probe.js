// Non-JS modules as wrangler's default rules make them (Text, Data, CompiledWasm), bundled once
// and run in Cinder and in workerd (test/differential/examples.test.ts).
import page from './modules/page.html';
import query from './modules/query.sql';
import table from './modules/table.bin';
import addModule from './modules/add.wasm';

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/text') return new Response(page + query, { headers: { 'content-type': 'text/html; charset=utf-8' } });
    if (url.pathname === '/data') return Response.json({ isArrayBuffer: table instanceof ArrayBuffer, bytes: Array.from(new Uint8Array(table)) });
    if (url.pathname === '/wasm') {
      const instance = await WebAssembly.instantiate(addModule);
      const sync = new WebAssembly.Instance(addModule);
      return Response.json({
        isModule: addModule instanceof WebAssembly.Module,
        exports: WebAssembly.Module.exports(addModule),
        async: instance.exports.add(40, 2),
        sync: sync.exports.add(-1, 1),
      });
    }
    return new Response('not found', { status: 404 });
  },
};
