import { readFileSync } from 'node:fs';
import { Runtime } from '../dist/src/runtime/runtime.js';
import { HostBridge } from '../dist/src/runtime/host-bridge.js';
import { singleScriptWorker } from '../dist/src/runtime/worker-definition.js';
import pino from 'pino';
const counts = {};
for (const m of ['onCall', 'onCallSync', 'onSend']) {
  const orig = HostBridge.prototype[m];
  if (!orig) { console.log('no', m); continue; }
  HostBridge.prototype[m] = function (op, ...rest) { const k = m + ':' + op; counts[k] = (counts[k] ?? 0) + 1; return orig.call(this, op, ...rest); };
}
const rt = await Runtime.create({ logger: pino({ level: 'warn' }) });
rt.deploy(singleScriptWorker('hello', readFileSync('bench/.build/hello.mjs', 'utf8')));
const req = { method: 'GET', url: 'http://hello.bench/', headers: [['host', 'hello.bench']], body: null };
await rt.fetch('hello', req);
console.log('first request', counts); for (const k in counts) delete counts[k];
for (let i = 0; i < 100; i++) await rt.fetch('hello', req);
console.log('per 100 warm requests', counts);
rt.close();
