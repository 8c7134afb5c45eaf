// Many workers, few live: 10,000 distinct hello workers deployed in one Cinder process, requests
// spread over them by a Zipf law (a few hot workers, a long tail, as tenants' traffic is), and a
// cap on workers with live isolates. What it shows: RSS stays bounded by the cap (the tail is
// evicted and comes back by cold start), and the latency the mix sees at p50/p99.
//   node --no-node-snapshot bench/zipf.mjs [--workers=10000] [--cap=1000] [--requests=20000]
//                                          [--s=1.0] [--concurrency=8]
import { LeanClient, parseServerTiming } from './lib/client.mjs';
import { startNodeServer } from './lib/procs.mjs';
import { summarize, table, fmtMs } from './lib/stats.mjs';

const arg = (name, fallback) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const WORKERS = arg('workers', 10_000);
const CAP = arg('cap', 1_000);
const REQUESTS = arg('requests', 20_000);
const S = arg('s', 1.0);
const CONCURRENCY = arg('concurrency', 8);

const HELLO = `export default { fetch(request) { return new Response('Hello World!\\n', { headers: { 'content-type': 'text/plain;charset=UTF-8' } }); } };`;

// Zipf(s) over ranks 1..n by inverse CDF on precomputed cumulative weights; a fixed seed so
// every run draws the same sequence.
function zipfSampler(n, s, seed = 42) {
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let k = 1; k <= n; k++) cumulative[k - 1] = total += 1 / k ** s;
  let state = seed >>> 0;
  const random = () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  return () => {
    const target = random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] < target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const server = await startNodeServer('cinder.mjs', { runtime: { maxLiveWorkers: CAP } });
try {
  await server.call({ op: 'deployMany', prefix: 'z', count: WORKERS, code: HELLO });
  const before = await server.call({ op: 'stats' });
  const next = zipfSampler(WORKERS, S);
  const latencies = [];
  const coldLatencies = [];
  let errors = 0;
  let cold = 0;
  let rssMax = before.rssMb;
  let liveMax = 0;
  let sent = 0;
  const sampler = setInterval(async () => {
    const stats = await server.call({ op: 'stats' }).catch(() => null);
    if (stats) {
      rssMax = Math.max(rssMax, stats.rssMb);
      liveMax = Math.max(liveMax, stats.liveIsolates);
    }
  }, 500);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      const client = new LeanClient({ port: server.port });
      while (sent < REQUESTS) {
        sent++;
        const name = `z${next()}`;
        const response = await client.get('/', `${name}.bench`);
        if (response.status !== 200) errors++;
        const timing = parseServerTiming(response.headers['server-timing']);
        latencies.push(response.ms);
        if (timing.cold !== undefined) {
          cold++;
          coldLatencies.push(response.ms);
        }
      }
      client.close?.();
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const after = await server.call({ op: 'stats' });
  rssMax = Math.max(rssMax, after.rssMb);
  const all = summarize(latencies);
  const coldSummary = summarize(coldLatencies);
  console.log(`Zipf(s=${S}) over ${WORKERS} workers, cap ${CAP} live, ${REQUESTS} requests from ${CONCURRENCY} connections (${new Date().toISOString()})`);
  console.log(
    table([
      ['requests', 'req/s', 'errors', 'cold starts', 'p50 ms', 'p99 ms', 'cold p50 ms', 'cold p99 ms', 'live isolates max', 'RSS before MB', 'RSS max MB'],
      [REQUESTS, Math.round(REQUESTS / seconds), errors, `${cold} (${((100 * cold) / REQUESTS).toFixed(1)}%)`, fmtMs(all.p50), fmtMs(all.p99), fmtMs(coldSummary?.p50), fmtMs(coldSummary?.p99), Math.max(liveMax, after.liveIsolates), Math.round(before.rssMb), Math.round(rssMax)],
    ]),
  );
} finally {
  await server.stop();
}
