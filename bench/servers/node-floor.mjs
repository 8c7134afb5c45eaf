// Peer: the floor under the warm p99 (issue 24, round 8). A plain Node server of the same shape
// as `cinder serve` without the runtime: node:http in front; the requests read in one turn of the
// event loop cross to a second thread as one JSON string (as Cinder's batches enter an isolate's
// thread), which answers them as one JSON string; each answer is written with one writeHead and one
// end; one access line a request goes to an asynchronous destination (sonic-boom, as pino's).
// The second thread spins `threadUs` µs a request and the serving thread `mainUs`, so its CPU per
// request can be set to Cinder's: what is left is what any Node server doing that much work a
// request, on these cores with this client, gets.
import http from 'node:http';
import { Worker } from 'node:worker_threads';
import SonicBoom from 'sonic-boom';

const options = JSON.parse(process.argv[2] ?? '{}');
const threadUs = options.threadUs ?? 8;
const mainUs = options.mainUs ?? 0;

const spin = (us) => {
  const end = process.hrtime.bigint() + BigInt(Math.round(us * 1000));
  while (process.hrtime.bigint() < end);
};

const thread = new Worker(
  `const { parentPort } = require('node:worker_threads');
   const spin = ${spin.toString()};
   parentPort.on('message', (text) => {
     const batch = JSON.parse(text);
     const answers = batch.map((request) => {
       spin(${threadUs});
       return { status: 200, headers: ['content-type', 'text/plain;charset=UTF-8'], body: 'Hello World!\\n', url: request.url };
     });
     parentPort.postMessage(JSON.stringify(answers));
   });`,
  { eval: true },
);

const log = new SonicBoom({ dest: '/dev/null', sync: false });
let waiting = [];
const inFlight = [];
let scheduled = false;

const flush = () => {
  scheduled = false;
  const batch = waiting;
  waiting = [];
  inFlight.push(batch);
  thread.postMessage(JSON.stringify(batch.map(({ req }) => ({ method: req.method, url: req.url, headers: req.rawHeaders }))));
};

thread.on('message', (text) => {
  const answers = JSON.parse(text);
  const batch = inFlight.shift();
  for (let i = 0; i < batch.length; i++) {
    const { req, res, started } = batch[i];
    const answer = answers[i];
    res.writeHead(answer.status, [...answer.headers, 'content-length', Buffer.byteLength(answer.body)]);
    res.end(answer.body);
    log.write(`{"level":30,"time":"${new Date().toISOString()}","method":${JSON.stringify(req.method)},"path":${JSON.stringify(req.url)},"status":${answer.status},"wall_ms":${(performance.now() - started).toFixed(3)},"msg":"request"}\n`);
  }
});

const server = http.createServer({ keepAlive: true, noDelay: true }, (req, res) => {
  if (mainUs) spin(mainUs);
  waiting.push({ req, res, started: performance.now() });
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));
process.on('message', (msg) => process.send({ type: 'reply', id: msg.id, value: { rssMb: process.memoryUsage().rss / 2 ** 20 } }));
process.on('SIGTERM', () => process.exit(0));
