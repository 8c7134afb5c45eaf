// The internal endpoint through which serving processes (of this node and others) hand each other
// Durable Object events (object-placement.ts). A listener of its own, never the data plane's:
// every host and path there belongs to tenants. It binds --internal-host (default 127.0.0.1; give
// the node's private address when nodes run on several machines) on a port of its own per process
// (so a forward reaches the very process holding the object), and every request must carry the
// secret the nodes share in Redis, which tenants never see.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { serialize, deserialize } from 'node:v8';
import type { Logger } from 'pino';
import { NOT_HELD, type DeliveryOutcome, type ForwardedEvent } from '../../bindings/durable-objects/index.js';
import { FORWARD_PATH } from './object-placement.js';

/** A forwarded event carries a request body (100 MB at most on the data plane) and its framing. */
const MAX_BODY_BYTES = 110 * 1024 * 1024;

export interface NodeLink {
  /** host:port other processes reach this one at */
  address: string;
  close(): Promise<void>;
}

export async function startNodeLink(options: { host: string; port?: number; secret: string; logger: Logger; receive(event: ForwardedEvent): Promise<DeliveryOutcome | typeof NOT_HELD> }): Promise<NodeLink> {
  const expected = Buffer.from(`Bearer ${options.secret}`);
  const server = http.createServer((req, res) => {
    const answer = (status: number, body: Buffer | string) => {
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/octet-stream', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      req.resume();
      return answer(401, 'not a Cinder node');
    }
    if (req.method !== 'POST' || req.url !== FORWARD_PATH) {
      req.resume();
      return answer(404, 'no such internal endpoint');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        answer(413, 'forwarded event too large');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      let event: ForwardedEvent;
      try {
        event = deserialize(Buffer.concat(chunks)) as ForwardedEvent;
      } catch {
        return answer(400, 'malformed forwarded event');
      }
      options.receive(event).then(
        (out) => (out === NOT_HELD ? answer(409, 'not held here') : answer(200, serialize(out))),
        (error) => answer(200, serialize({ error: { name: (error as Error).name === 'TypeError' ? 'TypeError' : 'Error', message: (error as Error).message } } satisfies DeliveryOutcome)),
      );
    });
  });
  server.keepAliveTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // exclusive: under node:cluster each serving process binds its own port, not a shared one.
    server.listen({ host: options.host, port: options.port ?? 0, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  options.logger.info({ address: `${host}:${port}` }, 'Durable Object internal endpoint listening');
  return {
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
