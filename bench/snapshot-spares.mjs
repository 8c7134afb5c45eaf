// Cold starts of one version from its deployment snapshot, with and without a spare isolate made
// ahead (DeploymentSnapshotIsolatesOptions.spares), through runtime.fetch in-process (issue 23,
// round 5): `npx node --no-node-snapshot bench/snapshot-spares.mjs [--n=12] [--gap-ms=40]`.
// Each line: the bring-up (coldMs) of n cold starts of the API worker, evicted after each.
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { rootDir } from './lib/procs.mjs';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';
import { sleep } from './lib/stats.mjs';

const dist = (p) => import(join(rootDir, 'dist', 'src', p));
const { Runtime } = await dist('runtime/runtime.js');
const { createLogger } = await dist('observability/logger.js');
const { singleScriptWorker } = await dist('model/worker-definition.js');
const { buildDeploymentSnapshot } = await dist('runtime/deployment-snapshot.js');
const { installStandardOps } = await dist('app/standard-ops.js');

const arg = (name, fallback) => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const N = Number(arg('n', 12));
const GAP = Number(arg('gap-ms', 40));
await buildWorkers();
const code = readFileSync(join(buildDir, 'api-worker.mjs'), 'utf8');
for (const spares of [0, 1]) {
  const runtime = await Runtime.create({ logger: createLogger({ level: 'warn' }), deploymentSnapshots: { spares } });
  installStandardOps(runtime, { allowPrivate: false });
  const def = singleScriptWorker('api', code);
  for (const m of def.modules) m.type = 'esm';
  const built = await buildDeploymentSnapshot(def);
  if (!built.ok) throw new Error(built.reason);
  def.snapshot = built.snapshot;
  runtime.deploy(def);
  const cold = [];
  for (let i = 0; i < N; i++) {
    const res = await runtime.fetch('api', { method: 'GET', url: 'http://api.bench/api/users/7', headers: [['host', 'api.bench']], body: null });
    if (res.status !== 200) throw new Error(`answered ${res.status}`);
    cold.push(res.coldMs.toFixed(2));
    runtime.evict('api');
    await sleep(GAP);
  }
  console.log(`spares ${spares}: bring-up ms ${cold.join(' ')}; isolates made ${runtime.snapshots.stats.made}, taken ${runtime.snapshots.stats.taken}`);
  runtime.close();
}
process.exit(0);
