import { readFileSync } from 'node:fs';
import ivm from 'isolated-vm';
import { Runtime } from '../dist/src/runtime/runtime.js';
import { singleScriptWorker } from '../dist/src/runtime/worker-definition.js';
import { WorkerInstance } from '../dist/src/runtime/worker-instance.js';
import { ReadyIsolate } from '../dist/src/runtime/ready-isolate.js';
import pino from 'pino';
const rt = await Runtime.create({ logger: pino({ level: 'warn' }) });
const def = singleScriptWorker('hello', readFileSync('bench/.build/hello.mjs', 'utf8'));
rt.deploy(def);
const req = { method: 'GET', url: 'http://hello.bench/', headers: [['host', 'hello.bench'], ['accept', '*/*']], body: null };
const settle = () => new Promise((r) => setTimeout(r, 20));
const res = { none: [], eval: [], dispatch: [], second: [], warmEval: [], warmDispatch: [] };
for (let i = 0; i < 40; i++) {
  for (const mode of ['none', 'eval', 'dispatch']) {
    await settle();
    const ready = new ReadyIsolate(rt.source, 128);
    let t = performance.now();
    if (mode === 'eval') {
      await ready.context.eval(`(async () => { const u = new URL('http://a.b/c?d=1'); const h = new Headers([['a','b']]); const r = new Request('http://x.y/z', {headers: [['host','x']]}); void r.url; void r.headers.get('host'); const s = new Response('hi', {headers: {'content-type':'text/plain'}}); await s.text(); await new Response(new Uint8Array(3)).arrayBuffer(); })()`, { promise: true });
      res.warmEval.push(performance.now() - t);
    } else if (mode === 'dispatch') {
      await ready.entry.dispatchFetch.apply(undefined, [0, new ivm.ExternalCopy(req).copyInto({ release: true })], { result: { promise: true, copy: true } });
      res.warmDispatch.push(performance.now() - t);
    }
    await settle();
    const inst = new WorkerInstance(def, ready, rt.host);
    inst.load();
    t = performance.now();
    const r = await inst.fetch(req, 'x');
    res[mode].push(performance.now() - t);
    if (mode === 'none') { t = performance.now(); await inst.fetch(req, 'y'); res.second.push(performance.now() - t); }
    if (r.response?.status !== 200) console.log(mode, r);
    ready.dispose('x');
  }
}
const med = (a) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)].toFixed(2);
for (const [k, v] of Object.entries(res)) console.log(k, med(v), 'ms');
rt.close();
