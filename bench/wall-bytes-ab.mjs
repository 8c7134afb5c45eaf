// What counting an op's arguments before the copy (sandbox/wall-bytes.ts) costs a call, in-process
// and interleaved: `flock /work/bench.lock npx node bench/wall-bytes-ab.mjs [--calls=20000] [--rounds=6]`.
//
// One isolate with a host Reference standing for the bridge's `call` (it answers at once). For each
// argument shape an ordinary op sends, rounds alternate A (the call alone, as before) and B (the
// walk, then the call); reported per shape: the isolate's CPU per call (isolate.cpuTime, the
// guest thread's, where the walk runs) for A and B, medians over rounds, and the walk alone in a
// tight loop.
import { join } from 'node:path';
import { build } from 'esbuild';
import ivm from 'isolated-vm';
import { rootDir } from './lib/procs.mjs';

const arg = (name, fallback) => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const CALLS = Number(arg('calls', 20000));
const ROUNDS = Number(arg('rounds', 6));

const bundled = await build({ entryPoints: [join(rootDir, 'sandbox', 'wall-bytes.ts')], bundle: true, write: false, format: 'iife', globalName: 'wall', target: 'es2022' });
const isolate = new ivm.Isolate({ memoryLimit: 128 });
const context = await isolate.createContext();
await context.eval(bundled.outputFiles[0].text);
await context.global.set('call', new ivm.Reference(async () => undefined));

// What ordinary ops hand the bridge: hostCall(op, ...args) sends [op, invocationId, args].
await context.eval(`
const BUDGET = 128 * 1024 * 1024;
const OPTS = { arguments: { copy: true }, result: { copy: true, promise: true } };
globalThis.shapes = {
  'kv.get': ['kv.get', ['KV', 'user:1234', 'text', undefined]],
  'timer': ['timer', [17, 100]],
  'fetch': ['fetch', [{ method: 'GET', url: 'https://api.example.com/v1/items?page=2', headers: [['accept', 'application/json'], ['user-agent', 'worker'], ['authorization', 'Bearer abcdefghijklmnop'], ['x-request-id', '0123456789abcdef']], body: null, bodyStream: undefined, hostStream: undefined, redirect: 'follow', fetchId: 3 }]],
  'do.storage put': ['do.storage', [{ kind: 'put', entries: [['count', 42], ['profile', { name: 'ada', tags: ['a', 'b'], since: 1700000000000 }]] }]],
};
globalThis.run = async (name, walk, n) => {
  const [op, args] = shapes[name];
  for (let i = 0; i < n; i++) {
    if (walk && wall.wallBytes(args, BUDGET) < 0) throw new Error('over');
    await call.apply(undefined, [op, 1, args], OPTS);
  }
};
globalThis.walkOnly = (name, n) => {
  const [, args] = shapes[name];
  let total = 0;
  for (let i = 0; i < n; i++) total += wall.wallBytes(args, BUDGET);
  return total;
};
`);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cpuNs = () => Number(isolate.cpuTime);

async function measure(name, walk) {
  const before = cpuNs();
  await context.evalClosure(`return run($0, $1, $2)`, [name, walk, CALLS], { result: { promise: true } });
  return (cpuNs() - before) / CALLS / 1000; // µs per call
}

const rows = [];
for (const name of ['kv.get', 'timer', 'fetch', 'do.storage put']) {
  await measure(name, false);
  await measure(name, true); // warm both paths
  const a = [];
  const b = [];
  for (let round = 0; round < ROUNDS; round++) {
    if (round % 2 === 0) {
      a.push(await measure(name, false));
      b.push(await measure(name, true));
    } else {
      b.push(await measure(name, true));
      a.push(await measure(name, false));
    }
  }
  const before = cpuNs();
  await context.evalClosure(`return walkOnly($0, $1)`, [name, CALLS * 10]);
  const walk = (cpuNs() - before) / (CALLS * 10) / 1000;
  rows.push({ shape: name, 'A call µs': median(a).toFixed(2), 'B walk+call µs': median(b).toFixed(2), 'B-A µs': (median(b) - median(a)).toFixed(2), 'walk alone µs': walk.toFixed(3) });
}
console.table(rows);
isolate.dispose();
