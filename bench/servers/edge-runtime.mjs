// Peer: Vercel's edge-runtime (a Node `vm` context with Web APIs, npm `edge-runtime`).
//   /cold/...  a brand-new EdgeRuntime (new vm context, Web API primitives loaded, worker code
//              evaluated) for every request: edge-runtime's cold start
//   anything else: one EdgeRuntime per worker, kept (warm)
// The worker is chosen by the Host's first label (hello | hono), as in Cinder. Responses carry
// Server-Timing (cold = new EdgeRuntime, total = request in to response written) like Cinder's.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeRuntime, createHandler } from 'edge-runtime';
import { benchDir } from '../lib/procs.mjs';

const SOURCES = {
  hello: readFileSync(join(benchDir, '.build', 'hello-sw.js'), 'utf8'),
  hono: readFileSync(join(benchDir, '.build', 'hono-app-sw.js'), 'utf8'),
};
const warm = new Map();

const server = http.createServer({ keepAlive: true, noDelay: true }, async (req, res) => {
  const started = performance.now();
  const worker = (req.headers.host ?? '').split('.')[0];
  const source = SOURCES[worker];
  if (!source) {
    res.writeHead(404).end('no such worker\n');
    return;
  }
  let coldMs = null;
  let handler;
  if (req.url.startsWith('/cold/')) {
    req.url = req.url.slice(5);
    const runtime = new EdgeRuntime({ initialCode: source });
    handler = createHandler({ runtime }).handler;
    coldMs = performance.now() - started;
  } else {
    if (!warm.has(worker)) warm.set(worker, createHandler({ runtime: new EdgeRuntime({ initialCode: source }) }).handler);
    handler = warm.get(worker);
  }
  // createHandler writes headers itself; add ours just before they go out.
  const writeHead = res.writeHead;
  res.writeHead = function (...args) {
    const parts = coldMs == null ? [] : [`cold;dur=${coldMs.toFixed(3)}`];
    parts.push(`total;dur=${(performance.now() - started).toFixed(3)}`);
    this.setHeader('server-timing', parts.join(', '));
    return writeHead.apply(this, args);
  };
  await handler(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));
process.on('message', (msg) => process.send({ type: 'reply', id: msg.id, value: { rssMb: process.memoryUsage().rss / 2 ** 20 } }));
process.on('SIGTERM', () => process.exit(0));
