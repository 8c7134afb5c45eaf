// Issue 22 (r7): what a deployment-snapshot build costs in CPU, an earlier builder against this
// tree's (the trial under the worker's limits, then createSnapshot under a budget), interleaved.
// The earlier one is a copy in scripts/ (it loads ../dist/ from there), by default
// scripts/build-deployment-snapshot-main.mjs (AB_MAIN= names another):
//   git show main:scripts/build-deployment-snapshot.mjs > scripts/build-deployment-snapshot-main.mjs
// CPU is the builder process's (and what it waited for), read from /proc/self/stat's cutime +
// cstime around each build; medians of --rounds.
//   flock /work/bench.lock npx node --no-node-snapshot bench/builder-cpu-ab.mjs [--rounds=7]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDeploymentSnapshot } from '../dist/src/runtime/deployment-snapshot.js';
import { buildWorkers, buildDir } from './lib/build-workers.mjs';

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const ROUNDS = Number(arg('rounds', 7));
await buildWorkers();
const workers = {
  hello: { main: 'w.js', modules: [{ name: 'w.js', type: 'esm', code: 'export default { fetch() { return new Response("ok") } };' }] },
  api: { main: 'w.js', modules: [{ name: 'w.js', type: 'esm', code: readFileSync(join(buildDir, 'api-worker.mjs'), 'utf8') }] },
  spin: { main: 'w.js', modules: [{ name: 'w.js', type: 'esm', code: 'export default { fetch() { for (;;) {} } };' }] },
};
const TICK_MS = 10; // USER_HZ 100
const childCpuMs = () => {
  const fields = readFileSync('/proc/self/stat', 'latin1').split(') ')[1].split(' ');
  return (Number(fields[13]) + Number(fields[14])) * TICK_MS;
};
const builders = { main: join(process.cwd(), 'scripts', process.env.AB_MAIN ?? 'build-deployment-snapshot-main.mjs'), tree: undefined };
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const only = arg('only', '');
for (const [name, def] of Object.entries(workers)) {
  if (only && !only.split(',').includes(name)) continue;
  const cpu = { main: [], tree: [] };
  const outcome = {};
  for (let r = 0; r < (name === 'spin' ? 1 : ROUNDS); r++) {
    for (const which of r % 2 ? ['tree', 'main'] : ['main', 'tree']) {
      const before = childCpuMs();
      const built = await buildDeploymentSnapshot(def, { builderPath: builders[which] });
      cpu[which].push(childCpuMs() - before);
      outcome[which] = built.ok ? 'built' : built.reason.slice(0, 70);
    }
  }
  console.log(`${name}: builder CPU ms median main ${median(cpu.main)} / tree ${median(cpu.tree)} (n=${cpu.main.length}; main ${cpu.main.join(',')}; tree ${cpu.tree.join(',')}) main: ${outcome.main} | tree: ${outcome.tree}`);
}
