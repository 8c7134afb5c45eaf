// A Cinder data plane with KV on SQLite under argv[2], run as its own process so that the
// durability test can kill -9 it. Built code (dist/, made by the suite's global setup), as a
// server would run. Prints "port <n>" once it listens.
import pino from 'pino';
import { Runtime } from '../../dist/src/runtime/runtime.js';
import { createIngress } from '../../dist/src/data-plane/ingress.js';
import { Router } from '../../dist/src/data-plane/router.js';
import { singleScriptWorker } from '../../dist/src/model/worker-definition.js';
import { createKVService, installKV } from '../../dist/bindings/kv/index.js';

const dataDir = process.argv[2];
const logger = pino({ level: 'warn' });
const runtime = await Runtime.create({ logger });
const kv = createKVService({ data: dataDir }, { sweepIntervalMs: 0 });
installKV(runtime, kv);
runtime.deploy(
  singleScriptWorker(
    'writer',
    `export default {
      async fetch(request, env) {
        const key = new URL(request.url).pathname.slice(1);
        await env.KV.put(key, 'value of ' + key, { metadata: { key } });
        return new Response('stored ' + key);
      },
    };`,
    { bindings: { KV: { type: 'kv_namespace', namespace_id: 'durable' } } },
  ),
);
const router = new Router((name) => runtime.has(name));
router.defaultWorker = 'writer';
const server = createIngress({ runtime, router, logger });
server.listen(0, '127.0.0.1', () => process.stdout.write(`port ${server.address().port}\n`));
