import { it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
it('scratch', async () => {
  const s = await startTestServer({ a: 'export default { fetch(r){ return new Response("hi "+ new URL(r.url).pathname) } }' });
  const r = await s.request('a', '/x'); console.log(r.status, r.text);
  console.log(s.runtime.check({ name: 'b', version: '1', main: 'w.js', modules: [{ name: 'w.js', type: 'esm', code: 'export default {\n fetch() {\n  return (;\n}}' }], bindings: {} }));
  console.log(s.runtime.check({ name: 'b', version: '1', main: 'w.js', modules: [{ name: 'w.js', type: 'esm', code: 'const x = 1;\nthrow new Error("boom at top");\nexport default {}' }], bindings: {} }));
  console.log(s.runtime.check({ name: 'b', version: '1', main: 'w.js', modules: [{ name: 'w.js', type: 'esm', code: 'import {x} from "./lib/a.js"; export default { fetch(){ return new Response(x)} }' }, { name: 'lib/a.js', type: 'esm', code: 'import {y} from "../b.js"; export const x = "a"+y;' }, { name: 'b.js', type: 'esm', code: 'export const y = "b";' }], bindings: {} }));
  console.log(s.runtime.check({ name: 'b', version: '1', main: 'w.js', modules: [{ name: 'w.js', type: 'esm', code: 'import {x} from "./nope.js"; export default {}' }], bindings: {} }));
  console.log(s.runtime.check({ name: 'b', version: '1', main: 'w.js', modules: [{ name: 'w.js', type: 'script', code: 'addEventListener("fetch", e => e.respondWith(new Response("sw")))' }], bindings: {} }));
  console.log(s.runtime.check({ name: 'b', version: '1', main: 'w.js', modules: [{ name: 'w.js', type: 'esm', code: 'export default {}' }], bindings: {S: {type:'service', service:'x'}} }));
  await s.close();
});
