// The floor under a cold start's bring-up at a steady rate (issue 23): what waking another thread
// and coming back costs on this machine, with no Cinder code at all, paced like bench/pool-ab.mjs
// and `bench:cold` pace their cold starts.
//
//   npx node --no-node-snapshot bench/crossing-floor.mjs [--rate=200] [--events=300] [--passes=6]
//
// Rows (passes interleaved, one row per pass in turn; nothing is built while a pass runs):
//   thread ping         a worker_threads round trip (postMessage there and back): the floor of any
//                       design that answers on another thread
//   ivm 1 crossing      a fresh isolated-vm isolate made before the pass (context, a module
//                       compiled and linked), per event: `await module.evaluate()`
//   ivm 2 crossings     the same, then `await install.apply(..., {result: {promise: true}})`: the
//                       two round trips a Cinder cold start from its pool still makes (evaluate,
//                       install; bench/README "issue 23, round 8")
// Each figure is the event's own time on the thread that starts it (performance.now around it).
import ivm from 'isolated-vm';
import { Worker } from 'node:worker_threads';
import { summarize, table, fmtMs, sleep } from './lib/stats.mjs';

const arg = (name, fallback) => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const RATE = Number(arg('rate', 200));
const EVENTS = Number(arg('events', 300));
const PASSES = Number(arg('passes', 6));
const GAP_MS = 1000 / RATE;

const SOURCE = `let hits = 0; export function install() { hits++; return Promise.resolve(hits); }`;

async function readyIsolate() {
  const isolate = new ivm.Isolate({ memoryLimit: 128 });
  const context = await isolate.createContext();
  const module = await isolate.compileModule(SOURCE, { filename: 'floor.js' });
  module.instantiateSync(context, () => {
    throw new Error('no imports');
  });
  return { isolate, module };
}

function threadPinger() {
  const worker = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => parentPort.postMessage(m));', { eval: true });
  let waiting = null;
  worker.on('message', () => waiting?.());
  return {
    ping: () => new Promise((resolve) => {
      waiting = resolve;
      worker.postMessage(0);
    }),
    close: () => worker.terminate(),
  };
}

const rows = {
  'thread ping': {
    async prepare() {
      this.pinger ??= threadPinger();
      await this.pinger.ping();
      return Array.from({ length: EVENTS }, () => null);
    },
    run() {
      return this.pinger.ping();
    },
  },
  'ivm 1 crossing': {
    prepare: () => Promise.all(Array.from({ length: EVENTS }, readyIsolate)),
    async run({ module }) {
      await module.evaluate();
    },
  },
  'ivm 2 crossings': {
    prepare: () => Promise.all(Array.from({ length: EVENTS }, readyIsolate)),
    async run({ module }) {
      await module.evaluate();
      const install = await module.namespace.get('install', { reference: true });
      await install.apply(undefined, [], { result: { promise: true, copy: true } });
    },
  },
};

const samples = Object.fromEntries(Object.keys(rows).map((id) => [id, []]));
for (let pass = 0; pass < PASSES; pass++) {
  for (const [id, row] of Object.entries(rows)) {
    const items = await row.prepare();
    global.gc?.();
    await sleep(200);
    let next = performance.now();
    for (const item of items) {
      next += GAP_MS;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      const started = performance.now();
      await row.run(item);
      samples[id].push(performance.now() - started);
    }
    for (const item of items) item?.isolate.dispose();
  }
}
rows['thread ping'].pinger.close();

console.log(`crossing floor at ${RATE}/s, ${EVENTS} events x ${PASSES} passes per row (ms)`);
const out = [['row', 'n', 'p50', 'p90', 'p99', 'max']];
for (const [id, values] of Object.entries(samples)) {
  const s = summarize(values);
  out.push([id, s.n, fmtMs(s.p50), fmtMs(s.p90), fmtMs(s.p99), fmtMs(s.max)]);
}
console.log(table(out));
