// Cinder under test, in its own process: the real data plane (createIngress + Router) over a
// Runtime configured from argv[2] (JSON), controlled by the bench over IPC.
//   options: {pool: {enabled, min, max}, snapshot, codeCache, workerCodeCache,
//             workers: {name: sourceFile}, serverTiming, runtime: {other RuntimeOptions},
//             deploymentSnapshots: each worker gets its deployment snapshot built before it is
//             deployed, as `cinder serve` builds it after a deploy (the runtime then uses it
//             where it pays off, by its default rule)}
//   IPC ops: evict {name} | stats | warmMany {from, to, code} (density) | deployMany / evictMany
//            {prefix, count, code} (storm) | gc
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootDir } from '../lib/procs.mjs';

const dist = (p) => import(join(rootDir, 'dist', 'src', p));
const { Runtime } = await dist('runtime/runtime.js');
const { singleScriptWorker } = await dist('model/worker-definition.js');
const { createIngress } = await dist('data-plane/ingress.js');
const { Router } = await dist('data-plane/router.js');
const { createLogger } = await dist('observability/logger.js');
const { buildDeploymentSnapshot } = await dist('runtime/deployment-snapshot.js');
const { installStandardOps } = await dist('app/standard-ops.js');

const options = JSON.parse(process.argv[2] ?? '{}');
const logger = createLogger({ level: process.env.CINDER_LOG_LEVEL ?? 'warn' });

// as a serving process of `cinder serve` does (bench/lib/procs.mjs gives it the same flags)
await (await dist('app/serving-flags.js')).applyIsolateHeapFlags();
const runtime = await Runtime.create({
  logger,
  pool: options.pool,
  isolateSource: { snapshot: options.snapshot !== false, codeCache: options.codeCache !== false },
  workerCodeCache: options.workerCodeCache !== false,
  ...(options.runtime ?? {}), // idleTtlMs, maxLiveWorkers, maxIsolatesPerWorker
});
// The bench workers are ES modules. They are declared as such rather than left to
// detectModuleType, which misses a minified `export{x as default}` (no space after `export`)
// and would load the ~1 MB bundle as a classic script.
for (const [name, file] of Object.entries(options.workers ?? {})) {
  const def = singleScriptWorker(name, readFileSync(file, 'utf8'));
  for (const m of def.modules) m.type = 'esm';
  if (options.deploymentSnapshots) {
    const built = await buildDeploymentSnapshot(def);
    if (!built.ok) throw new Error(`deployment snapshot of ${name}: ${built.reason}`);
    def.snapshot = built.snapshot;
  }
  runtime.deploy(def);
}
// Outbound fetch, crypto.subtle and compression, as every Cinder server offers them.
installStandardOps(runtime, { allowPrivate: false });
const router = new Router((name) => runtime.has(name));
const server = createIngress({ runtime, router, logger, serverTiming: options.serverTiming !== false });
server.listen(0, '127.0.0.1', () => {
  process.send({ type: 'ready', port: server.address().port, source: runtime.source.kind, pool: runtime.poolStats() });
});

function stats() {
  const mem = process.memoryUsage();
  return {
    source: runtime.source.kind,
    pool: runtime.poolStats(),
    liveIsolates: runtime.liveIsolates(),
    coldStarts: runtime.coldStarts,
    awaitingDispose: runtime.isolatesAwaitingDispose?.() ?? null,
    rssMb: mem.rss / 2 ** 20,
    heapUsedMb: mem.heapUsed / 2 ** 20,
    externalMb: mem.external / 2 ** 20,
  };
}

const REQUEST = (name) => ({ method: 'GET', url: `http://${name}.bench/`, headers: [['host', `${name}.bench`]], body: null });

process.on('message', async (msg) => {
  const reply = (value, error) => process.send({ type: 'reply', id: msg.id, value, error });
  try {
    switch (msg.op) {
      case 'evict':
        runtime.evict(msg.name);
        return reply(true);
      case 'stats':
        return reply(stats());
      case 'warmMany': {
        // Deploy workers d<from>..d<to-1> (each its own source, as tenants' are) and request each
        // once, so that each has a live isolate.
        let failures = 0;
        let firstFailure = null;
        for (let i = msg.from; i < msg.to; i++) {
          const name = `d${i}`;
          runtime.deploy(singleScriptWorker(name, msg.code.replaceAll('__NAME__', name)));
          const response = await runtime.fetch(name, REQUEST(name));
          if (response.status !== 200) {
            failures++;
            firstFailure ??= `${name}: ${response.status} ${response.loadError ?? response.exception?.message ?? response.limit?.message ?? ''}`;
          }
        }
        return reply({ failures, firstFailure, ...stats() });
      }
      case 'deployMany':
        // Workers <prefix>0..<prefix><count-1>, each its own source (a comment), none live yet.
        for (let i = 0; i < msg.count; i++) {
          const def = singleScriptWorker(`${msg.prefix}${i}`, `${msg.code}\n// ${msg.prefix}${i}\n`);
          for (const m of def.modules) m.type = 'esm';
          runtime.deploy(def);
        }
        return reply(true);
      case 'evictMany':
        for (let i = 0; i < msg.count; i++) runtime.evict(`${msg.prefix}${i}`);
        return reply(true);
      case 'gc':
        globalThis.gc?.();
        return reply(stats());
      default:
        return reply(null, `unknown op ${msg.op}`);
    }
  } catch (error) {
    reply(null, String(error?.stack ?? error));
  }
});

process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close();
  runtime.close();
  process.exit(0);
});
