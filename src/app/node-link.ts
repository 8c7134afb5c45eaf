// The internal endpoint through which serving processes (of this node and others) hand each other
// Durable Object events (object-placement.ts). A listener of its own, never the data plane's:
// every host and path there belongs to tenants. It binds --internal-host (default 127.0.0.1; give
// the node's private address when nodes run on several machines) on a port of its own per process
// (so a forward reaches the very process holding the object), and every request must carry the
// secret the nodes share in Redis, which tenants never see.
//
// Two paths: POST FORWARD_PATH carries one event and its outcome; an upgrade on SOCKET_PATH carries
// a stub's fetch with `Upgrade: websocket` (the event in a header) and, when the object answers with
// a WebSocket, becomes that WebSocket: the connection is joined to the object's socket by the
// WebSocket host as a client's would be (its bounds, backpressure and metering), and the outcome
// rides in the 101's headers. An answer without a WebSocket is a plain 200 with the outcome.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { serialize, deserialize } from 'node:v8';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { NOT_HELD, type DeliveryOutcome, type ForwardedEvent, type SocketReceipt } from '../../bindings/durable-objects/index.js';
import type { WebSocketHost } from '../../bindings/websocket/host.js';
import { FORWARD_PATH, OUTCOME_HEADER, EVENT_HEADER, SOCKET_PATH, MAX_SOCKET_EVENT_BYTES } from './object-placement.js';
import { drained } from '../data-plane/drained.js';

/** A forwarded event carries a request body (100 MB at most on the data plane) and its framing. */
const MAX_BODY_BYTES = 110 * 1024 * 1024;

export interface NodeLink {
  /** host:port other processes reach this one at */
  address: string;
  close(): Promise<void>;
}

export interface NodeLinkOptions {
  host: string;
  port?: number;
  secret: string;
  logger: Logger;
  receive(event: ForwardedEvent): Promise<(DeliveryOutcome & { stream?: AsyncGenerator<Uint8Array | string, void, undefined> }) | typeof NOT_HELD>;
  /** the socket endpoint: absent, upgrades are refused */
  sockets?: { host: WebSocketHost; receive(event: ForwardedEvent): Promise<SocketReceipt | typeof NOT_HELD> };
  /** this process's holder id now: an event sent to another identity (one from before a lease
   *  lapse) is answered "not held here" at once, so the caller locates the object again */
  holder?: () => string;
  /** connections at most (default 1024): every process of every node may connect */
  maxConnections?: number;
}

/** the time a connection has to send a request's headers (a peer that stalls is cut) */
const HEADERS_TIMEOUT_MS = 10_000;

export async function startNodeLink(options: NodeLinkOptions): Promise<NodeLink> {
  const expected = Buffer.from(`Bearer ${options.secret}`);
  const authorized = (req: http.IncomingMessage) => {
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  // The caller names the holder it located; another identity of this process is not that one.
  const addressedHere = (req: http.IncomingMessage) => {
    const named = req.headers['x-cinder-holder'];
    return !options.holder || typeof named !== 'string' || named === options.holder();
  };
  // The event rides in a header: room for it (base64) beside the handshake's own.
  const server = http.createServer({ maxHeaderSize: Math.ceil((MAX_SOCKET_EVENT_BYTES * 4) / 3) + 64 * 1024 }, (req, res) => {
    const answer = (status: number, body: Buffer | string) => {
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/octet-stream', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (!authorized(req)) {
      // Nothing of a stranger's body is read: answered, and the connection cut.
      res.shouldKeepAlive = false;
      res.writeHead(401, { 'content-type': 'text/plain', connection: 'close' });
      res.end('not a Cinder node', () => req.destroy());
      return;
    }
    if (req.method !== 'POST' || req.url !== FORWARD_PATH) {
      req.resume();
      return answer(404, 'no such internal endpoint');
    }
    if (!addressedHere(req)) {
      req.resume();
      return answer(409, 'not held here');
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
        (out) => {
          if (out === NOT_HELD) return answer(409, 'not held here');
          const { stream, ...outcome } = out;
          if (!stream) return answer(200, serialize(outcome));
          void pipeStream(res, stream, outcome);
        },
        (error) => answer(200, serialize({ error: { name: (error as Error).name === 'TypeError' ? 'TypeError' : 'Error', message: (error as Error).message } } satisfies DeliveryOutcome)),
      );
    });
  });
  // Upgraded connections are not the server's any more: close() would wait on them forever.
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    const raw = (status: number, body: Buffer | string) => {
      const reason = http.STATUS_CODES[status] ?? '';
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      socket.write(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${typeof body === 'string' ? 'text/plain' : 'application/octet-stream'}\r\ncontent-length: ${bytes.length}\r\nconnection: close\r\n\r\n`);
      socket.end(bytes);
    };
    if (!authorized(req)) return raw(401, 'not a Cinder node');
    const sockets = options.sockets;
    if (req.method !== 'GET' || req.url !== SOCKET_PATH || !sockets) return raw(404, 'no such internal endpoint');
    if (!addressedHere(req)) return raw(409, 'not held here');
    let event: ForwardedEvent;
    try {
      const header = req.headers[EVENT_HEADER];
      if (typeof header !== 'string') throw new Error('no event');
      event = deserialize(Buffer.from(header, 'base64')) as ForwardedEvent;
    } catch {
      return raw(400, 'malformed forwarded event');
    }
    sockets.receive(event).then(
      (out) => {
        if (out === NOT_HELD) return raw(409, 'not held here');
        const { join, ...outcome } = out;
        if (!join) return raw(200, serialize(outcome));
        if (socket.destroyed) {
          // The caller went away while the object answered: its socket sees a close (1006).
          join.owner.drop(join.socketId);
          return;
        }
        sockets.host.upgrade(req, socket, head, join, [[OUTCOME_HEADER, serialize(outcome).toString('base64')]]);
      },
      (error) => raw(200, serialize({ error: { name: (error as Error).name === 'TypeError' ? 'TypeError' : 'Error', message: (error as Error).message } } satisfies DeliveryOutcome)),
    );
  });
  server.keepAliveTimeout = 15_000;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.maxConnections = options.maxConnections ?? 1024;
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
        // The WebSocket host has sent its close frames on these by now: ended (flushing them),
        // then cut, never waited on (a peer that does not answer its close must not hold us).
        for (const socket of upgraded) {
          socket.end();
          setTimeout(() => socket.destroy(), 1000).unref();
        }
        server.close(() => resolve());
      }),
  };
}

/** A streamed response's body as the forward's chunked body, the outcome in a header: written as
 *  the object writes it, at the pace the caller reads (a full socket pauses the object's stream);
 *  a caller that goes away cancels the stream. */
async function pipeStream(res: http.ServerResponse, stream: AsyncGenerator<Uint8Array | string, void, undefined>, outcome: DeliveryOutcome): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream', [OUTCOME_HEADER]: serialize(outcome).toString('base64') });
  res.flushHeaders();
  let gone = false;
  res.once('close', () => {
    if (!res.writableFinished) gone = true;
  });
  try {
    for await (const chunk of stream) {
      if (gone) break;
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (bytes.length === 0) continue;
      if (!res.write(bytes)) await drained(res);
    }
  } catch {
    // The object's stream failed mid-way: the caller sees its body cut (no clean end).
    res.destroy();
    return;
  } finally {
    if (gone) await stream.return().catch(() => {});
  }
  if (gone) return;
  res.end();
}
