// Peer: a bare isolated-vm isolate per request, the floor of "make an isolate on demand" with the
// same library Cinder uses: new Isolate + new context + compile a hello script + run it, then
// answer with what it returned. No Web APIs, no bridge, no snapshot, no pool.
//   /cold/... a new isolate per request (disposed after the response is written)
//   anything else: one isolate and compiled script kept (warm)
import http from 'node:http';
import ivm from 'isolated-vm';

const HELLO = `(function () { return JSON.stringify({ status: 200, headers: [['content-type', 'text/plain;charset=UTF-8']], body: 'Hello World!\\n' }); })()`;

function makeIsolate() {
  const isolate = new ivm.Isolate({ memoryLimit: 128 });
  const context = isolate.createContextSync();
  const script = isolate.compileScriptSync(HELLO, { filename: 'hello.js' });
  return { isolate, context, script };
}
let warm = null;

const server = http.createServer({ keepAlive: true, noDelay: true }, (req, res) => {
  const started = performance.now();
  const cold = req.url.startsWith('/cold/');
  let coldMs = null;
  let instance;
  if (cold) {
    instance = makeIsolate();
    coldMs = performance.now() - started;
  } else {
    instance = warm ??= makeIsolate();
  }
  const out = JSON.parse(instance.script.runSync(instance.context));
  const headers = out.headers.flat();
  const parts = coldMs == null ? [] : [`cold;dur=${coldMs.toFixed(3)}`];
  parts.push(`total;dur=${(performance.now() - started).toFixed(3)}`);
  headers.push('server-timing', parts.join(', '), 'content-length', Buffer.byteLength(out.body));
  res.writeHead(out.status, headers);
  res.end(out.body);
  if (cold) setImmediate(() => instance.isolate.dispose());
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));
process.on('message', (msg) => process.send({ type: 'reply', id: msg.id, value: { rssMb: process.memoryUsage().rss / 2 ** 20 } }));
process.on('SIGTERM', () => process.exit(0));
