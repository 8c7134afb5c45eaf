// In-process A/B of the host log's destination under the access log's pattern (issue 24, round 6):
// `cinder serve`'s access lines (data-plane/access-log.ts) written in bursts of --burst lines a turn
// of the event loop (a batch of answers), to stdout as the server does. A = pino.destination({ sync:
// false }) as it was, B = observability/log-destination.ts. Interleaved; prints CPU µs per line.
//
//   npx node --no-node-snapshot bench/log-write-ab.mjs [--lines=200000] [--burst=16] [--pairs=5] | cat > /dev/null
import pino from 'pino';
import { logDestination } from '../dist/src/observability/log-destination.js';
import { accessLog, markKnownFormat } from '../dist/src/data-plane/access-log.js';

const opt = (name, fallback) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const lines = opt('lines', 200_000);
const burst = opt('burst', 16);
const pairs = opt('pairs', 5);

function logger(destination) {
  const l = pino({ level: 'info', base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  markKnownFormat(l);
  return l;
}

async function run(destination) {
  const access = accessLog(logger(destination));
  const fields = { worker: 'hello', method: 'GET', path: '/api/users/42', status: 200, cpu_ms: 0.031, wall_ms: 1.234, requestId: '' };
  const t0 = process.cpuUsage();
  for (let n = 0; n < lines; ) {
    for (let i = 0; i < burst && n < lines; i++, n++) {
      fields.requestId = `r${n}abcdef0123456789abcdef012345`;
      access('info', fields);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const used = process.cpuUsage(t0);
  await new Promise((resolve) => destination.flush(resolve));
  return (used.user + used.system) / lines;
}

const a = [];
const b = [];
for (let p = 0; p < pairs; p++) {
  const order = p % 2 ? ['B', 'A'] : ['A', 'B'];
  for (const side of order) {
    const us = await run(side === 'A' ? pino.destination({ sync: false }) : logDestination());
    (side === 'A' ? a : b).push(us);
    process.stderr.write(`pair ${p + 1} ${side}: ${us.toFixed(3)} µs/line\n`);
  }
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
process.stderr.write(`median A (sonic-boom's write) ${median(a).toFixed(3)} µs/line, B (measured once) ${median(b).toFixed(3)} µs/line; ${lines} lines in bursts of ${burst}\n`);
