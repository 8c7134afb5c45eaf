// Peer: the ingress ceiling. A bare node:http server answering the hello response directly
// (mode "plain"), or building a web Request from the incoming message and a web Response for the
// answer, as a runtime must (mode "web", Node's own undici-backed Request/Response).
import http from 'node:http';

const options = JSON.parse(process.argv[2] ?? '{}');
const BODY = 'Hello World!\n';

const plain = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain;charset=UTF-8', 'content-length': 13 });
  res.end(BODY);
};

const web = async (req, res) => {
  const request = new Request(`http://${req.headers.host}${req.url}`, { method: req.method, headers: req.headers });
  const response = new Response(BODY, { headers: { 'content-type': 'text/plain;charset=UTF-8' } });
  void request.url;
  const body = Buffer.from(await response.arrayBuffer());
  const headers = [];
  for (const [k, v] of response.headers) headers.push(k, v);
  headers.push('content-length', body.length);
  res.writeHead(response.status, headers);
  res.end(body);
};

const server = http.createServer({ keepAlive: true, noDelay: true }, options.mode === 'web' ? web : plain);
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));
process.on('message', (msg) => process.send({ type: 'reply', id: msg.id, value: { rssMb: process.memoryUsage().rss / 2 ** 20 } }));
process.on('SIGTERM', () => process.exit(0));
