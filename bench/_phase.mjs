import { readFileSync } from 'node:fs';
import { Runtime } from '../dist/src/runtime/runtime.js';
import { singleScriptWorker } from '../dist/src/runtime/worker-definition.js';
import pino from 'pino';
const snapshot = process.argv[2] !== 'nosnap';
const rt = await Runtime.create({ logger: pino({ level: 'warn' }), isolateSource: { snapshot } });
console.log(rt.source.kind);
rt.deploy(singleScriptWorker('hello', readFileSync('bench/.build/hello.mjs', 'utf8')));
const req = { method: 'GET', url: 'http://hello.bench/', headers: [['host', 'hello.bench']], body: null };
for (let i = 0; i < 15; i++) {
  const t0 = performance.now();
  const r = await rt.fetch('hello', req);
  const t1 = performance.now();
  const r2 = await rt.fetch('hello', req);
  const t2 = performance.now();
  const r3 = await rt.fetch('hello', req);
  const t3 = performance.now();
  console.log(r.status, 'cold', r.coldMs.toFixed(2), 'first total', (t1 - t0).toFixed(2), 'second', (t2 - t1).toFixed(2), 'third', (t3 - t2).toFixed(2), r.body?.slice?.(0, 40));
  rt.evict('hello');
  await new Promise((r) => setTimeout(r, 5));
}
rt.close();
