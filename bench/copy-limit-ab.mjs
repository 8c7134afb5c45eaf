// What the copy limit inside isolated-vm's serializer (patch 13, an isolate's `copyLimit`) costs a
// copy, in-process and interleaved: `flock /work/bench.lock npx node --no-node-snapshot
// bench/copy-limit-ab.mjs [--rounds=8]`.
//
// Two isolates with the same code, the same memory limit (256 MB) and a host Reference standing
// for the bridge's `call` (it answers at once): A without a copyLimit (the serializer's buffer
// grows as before), B with Cinder's 128 MiB. For each argument size the guest hands the host as an
// op does (hostCall sends [op, invocationId, args], copied with `copy: true`), rounds alternate
// A and B (the order flips every round); reported per size: the guest thread's CPU per call
// (isolate.cpuTime, where the serialization runs), medians over rounds. 100 MiB is past half the
// limit, where B's delegate hands V8 the whole limit at once instead of doubling.
// `--control`: B without a copyLimit too (an A/A run: what two isolates differ by with no change).
import ivm from 'isolated-vm';

const arg = (name, fallback) => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const ROUNDS = Number(arg('rounds', 8));
const CONTROL = process.argv.includes('--control');
const MIB = 1024 * 1024;

const sizes = [
  { name: '1 KiB value (kv.put)', bytes: 1024, calls: 20000 },
  { name: '1 MiB value', bytes: MIB, calls: 400 },
  { name: '32 MiB value', bytes: 32 * MIB, calls: 12 },
  { name: '100 MiB value', bytes: 100 * MIB, calls: 4 },
];

async function variant(copyLimit) {
  const isolate = new ivm.Isolate({ memoryLimit: 256, ...(copyLimit ? { copyLimit } : {}) });
  const context = await isolate.createContext();
  await context.global.set('call', new ivm.Reference(() => undefined));
  await context.eval(`
    const OPTS = { arguments: { copy: true }, result: { copy: true, promise: true } };
    let args = null;
    globalThis.prepare = (bytes) => { args = ['KV', 'user:1234', 'v'.repeat(bytes), { expirationTtl: 60 }]; };
    globalThis.run = async (n) => { for (let i = 0; i < n; i++) await call.apply(undefined, ['kv.put', 1, args], OPTS); };
  `);
  return { isolate, context };
}

const a = await variant(0);
const b = await variant(CONTROL ? 0 : 128 * MIB);
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

async function measure(v, calls) {
  const before = Number(v.isolate.cpuTime);
  await v.context.evalClosure('return run($0)', [calls], { result: { promise: true } });
  return (Number(v.isolate.cpuTime) - before) / calls / 1000; // µs per call
}

const rows = [];
for (const size of sizes) {
  for (const v of [a, b]) await v.context.evalClosure('prepare($0)', [size.bytes]);
  await measure(a, size.calls);
  await measure(b, size.calls); // warm both
  const as = [];
  const bs = [];
  for (let round = 0; round < ROUNDS; round++) {
    if (round % 2 === 0) {
      as.push(await measure(a, size.calls));
      bs.push(await measure(b, size.calls));
    } else {
      bs.push(await measure(b, size.calls));
      as.push(await measure(a, size.calls));
    }
  }
  const ma = median(as);
  const mb = median(bs);
  rows.push({ size: size.name, 'A no limit µs': ma.toFixed(2), 'B copyLimit µs': mb.toFixed(2), 'B-A µs': (mb - ma).toFixed(2), 'B/A': (mb / ma).toFixed(3), 'A range µs': `${Math.min(...as).toFixed(1)}–${Math.max(...as).toFixed(1)}`, 'B range µs': `${Math.min(...bs).toFixed(1)}–${Math.max(...bs).toFixed(1)}` });
}
console.table(rows);
a.isolate.dispose();
b.isolate.dispose();
