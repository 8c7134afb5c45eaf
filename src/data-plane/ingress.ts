// HTTP ingress (the data plane): node:http in, worker invocation, node:http out. Keeps repeated
// headers (Set-Cookie) as they are, handles HEAD and bodiless statuses, enforces the request body
// limit, adds Server-Timing, and writes one log line per request.
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Runtime } from '../runtime/runtime.js';
import type { RuntimeResponse, SocketOwner } from '../runtime/contract.js';
import { newRequestId } from '../model/request-id.js';
import type { Router } from './router.js';
import { DEFAULT_LIMITS } from '../model/limits.js';
import { UploadStream } from './upload-stream.js';
import { accessLog } from './access-log.js';
import { parseRequestTarget } from './request-target.js';
import { drained } from './drained.js';
import { serveAssets } from './assets.js';
import { incomingHeaders, peerAddress, type ProxyTrust } from './client-ip.js';
import type { OriginForwarder, OriginRequest } from './origin.js';
import { DEFAULT_ORIGIN_BODY_MAX, ReplayableBody } from './replay-body.js';

export interface IngressOptions {
  runtime: Runtime;
  router: Router;
  logger: Logger;
  /** add a Server-Timing header (cold, cpu, total) to every response */
  serverTiming?: boolean;
  /** show exception messages and stacks in 500 bodies (dev), not just in logs */
  exposeErrors?: boolean;
  /** rewrite a worker's stack or load error before it is shown or logged (dev: source maps) */
  mapError?: (worker: string, text: string) => string;
  maxRequestBodyBytes?: number;
  /** WebSockets: completes the handshake when a worker answers an upgrade request with a 101
   *  (bindings/websocket/host.ts); without it, upgrade requests are refused with 501 */
  webSockets?: WebSocketUpgrader;
  /** request.cf.colo: where this server is (an operator setting; default "LOCAL") */
  colo?: string;
  /** peers whose CF-Connecting-IP, X-Forwarded-For and CF-IPCountry are believed (client-ip.ts) */
  trustProxy?: ProxyTrust;
  /** where a request goes when its worker throws after ctx.passThroughOnException() (origin.ts) */
  origins?: OriginForwarder;
  /** on a route with an origin, how much of a request body the worker read is kept to pass it
   *  through (replay-body.ts; default 1 MiB) */
  originBodyMax?: number;
}

export interface WebSocketUpgrader {
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, accepted: { owner: SocketOwner; socketId: number }, headers: [string, string][]): void;
}

/** An upgrade request's socket, while the worker decides (see the 'upgrade' listener). */
interface PendingUpgrade {
  socket: Duplex;
  head: Buffer;
}

function isWebSocketUpgrade(req: http.IncomingMessage): boolean {
  return req.method === 'GET' && String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
}

const NOT_AN_UPGRADE = 'Worker tried to return a WebSocket in a response to a request which did not contain the header "Upgrade: websocket".\n';

/** request.cf.colo when the operator names none. */
export const DEFAULT_COLO = 'LOCAL';

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);
// Headers the ingress owns: framing is decided here from the actual body.
const HOP_BY_HOP = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

class BodyTooLarge extends Error {}

/** Uploads up to this size (declared by Content-Length) are read whole before dispatch, which is
 *  cheapest; larger or chunked ones stream into the guest as they arrive. */
const BUFFERED_BODY_MAX = 1024 * 1024;

/** The body as the worker gets it, and what is kept to send it to an origin again (routes with
 *  an origin only): a copy of a body read whole, or a ReplayableBody around a streamed one. */
type IncomingBody = { body: ArrayBuffer | null; bodyStream?: AsyncIterable<Uint8Array>; replay?: { copy: ArrayBuffer | null; problem?: string } | ReplayableBody };

function takeBody(req: http.IncomingMessage, limit: number, keep: number | null): Promise<IncomingBody> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(new BodyTooLarge());
  if (req.method === 'GET' || req.method === 'HEAD' || declared === 0) {
    req.resume();
    return Promise.resolve({ body: null });
  }
  if (!(declared <= BUFFERED_BODY_MAX)) {
    const upload = new UploadStream(req, limit);
    if (keep === null) return Promise.resolve({ body: null, bodyStream: upload });
    const replay = new ReplayableBody(upload, keep);
    return Promise.resolve({ body: null, bodyStream: replay, replay });
  }
  return readBody(req, limit).then((body) => {
    if (keep === null || body === null) return { body };
    // The worker's copy may be transferred into its isolate (and so emptied here): keep our own.
    if (body.byteLength > keep) return { body, replay: { copy: null, problem: `the request body is ${body.byteLength} bytes, more than the ${keep} bytes the host keeps to pass it through (cinder serve --origin-body-max)` } };
    return { body, replay: { copy: body.slice(0) } };
  });
}

function readBody(req: http.IncomingMessage, limit: number): Promise<ArrayBuffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        reject(new BodyTooLarge());
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (total === 0) return resolve(null);
      // A fresh ArrayBuffer of exactly the body (Buffer.concat may hand back a pooled slab),
      // so it can be transferred into the isolate.
      const body = new Uint8Array(total);
      let offset = 0;
      for (const chunk of chunks) {
        body.set(chunk, offset);
        offset += chunk.length;
      }
      resolve(body.buffer);
    });
    req.on('error', reject);
  });
}

/** What request.cf is built from (sandbox/api/cf.ts): [colo, httpProtocol, tlsVersion, tlsCipher, country]. */
function cfFields(req: http.IncomingMessage, colo: string, country: string): string[] {
  const socket = req.socket as { encrypted?: boolean; getProtocol?(): string | null; getCipher?(): { name: string } | undefined };
  const protocol = `HTTP/${req.httpVersion}`;
  if (!socket.encrypted) return country ? [colo, protocol, '', '', country] : [colo, protocol];
  return [colo, protocol, socket.getProtocol?.() ?? '', socket.getCipher?.()?.name ?? '', country];
}

function serverTiming(result: RuntimeResponse | null, totalMs: number): string {
  const total = `total;dur=${totalMs.toFixed(3)}`;
  if (!result) return total;
  const cpu = `cpu;dur=${result.cpuMs.toFixed(3)}, ${total}`;
  return result.coldMs != null ? `cold;dur=${result.coldMs.toFixed(3)}, ${cpu}` : cpu;
}

/**
 * writeHead that cannot take the process down: the runtime checks a guest's status, reason and
 * headers at the crossing, but should anything still be refused by node:http, the response
 * becomes a plain 500. node:http keeps a refused reason phrase as res.statusMessage and would
 * reuse it for the next writeHead (throwing again), so it is reset first. Returns the status sent,
 * or null when even that failed and the connection was cut.
 */
function writeHeadSafely(res: http.ServerResponse, status: number, statusText: string | undefined, headers: (string | number)[], onRefused: (error: unknown) => void): number | null {
  try {
    res.writeHead(status, statusText || undefined, headers as unknown as string[]);
    return status;
  } catch (error) {
    onRefused(error);
  }
  try {
    res.statusMessage = 'Internal Server Error';
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    const body = 'Internal error: the response could not be sent\n';
    res.writeHead(500, 'Internal Server Error', ['content-type', 'text/plain; charset=utf-8', 'content-length', String(Buffer.byteLength(body))]);
    res.end(body);
  } catch {
    res.destroy();
  }
  return null;
}

/** Write a streamed body as the guest produces it (chunked), honouring socket backpressure. */
async function sendStream(res: http.ServerResponse, method: string, result: RuntimeResponse, headers: (string | number)[], timing: string | null): Promise<Error | null> {
  const stream = result.stream!;
  // Server-Timing here can only describe the time to the first byte: the body is still coming.
  if (timing) headers.push('server-timing', timing);
  // A body the guest had in hand but sent as a stream (to be pulled only as the client reads)
  // keeps its length.
  if (result.bodyLength !== undefined && !NULL_BODY_STATUSES.has(result.status)) headers.push('content-length', result.bodyLength);
  let refused: unknown;
  if (writeHeadSafely(res, result.status, result.statusText, headers, (error) => (refused = error)) === null) {
    await stream.return();
    return refused as Error;
  }
  if (method === 'HEAD' || NULL_BODY_STATUSES.has(result.status)) {
    await stream.return();
    res.end();
    return null;
  }
  res.flushHeaders();
  let clientGone = false;
  res.once('close', () => {
    if (!res.writableFinished) clientGone = true;
  });
  try {
    for await (const chunk of stream) {
      if (clientGone) break; // leaving the loop returns the generator: the guest stream is cancelled
      // Pull the next chunk from the guest only once the socket has taken this one: a client that
      // does not read holds the guest's stream, not host memory.
      if (!res.write(chunk)) await drained(res);
    }
    res.end();
    return null;
  } catch (error) {
    // The guest's stream failed after the headers went out: all we can do is cut the response
    // short so the client sees an incomplete body rather than a truncated "complete" one.
    res.destroy();
    return error as Error;
  }
}

export function createIngress(options: IngressOptions): http.Server {
  const { runtime, router, logger } = options;
  const access = accessLog(logger);
  const timing = options.serverTiming !== false;
  const maxBody = options.maxRequestBodyBytes ?? DEFAULT_LIMITS.requestBodyBytes;
  const colo = options.colo ?? DEFAULT_COLO;
  const trustProxy = options.trustProxy;
  const originBodyMax = options.originBodyMax ?? DEFAULT_ORIGIN_BODY_MAX;

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, upgrading?: PendingUpgrade) => {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const target = parseRequestTarget(req.url ?? '/', req.headers.host);
    const rawUrl = target?.pathAndQuery ?? '/';
    const path = target?.path ?? '/';
    const host = target?.host ?? 'localhost';
    const worker = target ? router.resolve(host, path) : null;
    const requestId = newRequestId();

    const finish = (status: number, headers: (string | number)[], body: string | Uint8Array | null, result: RuntimeResponse | null, extra?: Record<string, unknown>) => {
      const totalMs = performance.now() - started;
      if (timing) headers.push('server-timing', serverTiming(result, totalMs));
      const bodyless = method === 'HEAD' || NULL_BODY_STATUSES.has(status);
      // The length of the body we send, or for HEAD of the one GET would send; a HEAD answered
      // without a body keeps the worker's own Content-Length, if it gave one (as workerd does).
      if (!NULL_BODY_STATUSES.has(status)) {
        if (body != null) headers.push('content-length', typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
        else if (method === 'HEAD') {
          const declared = result?.headers.find(([name]) => name.toLowerCase() === 'content-length');
          if (declared) headers.push('content-length', declared[1]);
        } else headers.push('content-length', 0);
      }
      let refused: unknown;
      const sent = writeHeadSafely(res, status, result?.statusText, headers, (error) => (refused = error));
      if (sent !== null) res.end(bodyless || body == null ? undefined : body);
      if (refused) extra = { ...extra, err: `response refused by node:http: ${(refused as Error).message}` };
      const level = sent === null || status >= 500 ? 'warn' : 'info';
      access(level, { worker, method, path, status: sent ?? 500, cpu_ms: result ? Number(result.cpuMs.toFixed(3)) : 0, wall_ms: Number(totalMs.toFixed(3)), cold_ms: result?.coldMs ?? undefined, requestId }, extra);
    };

    if (!target) {
      res.shouldKeepAlive = false;
      finish(400, ['content-type', 'text/plain; charset=utf-8', 'connection', 'close'], 'Bad request target.\n', null);
      return;
    }
    if (!worker) {
      finish(404, ['content-type', 'text/plain; charset=utf-8'], `No worker matched this request (host "${host}", path "${path}").\n`, null);
      return;
    }

    const def = runtime.definition(worker);
    if (def?.assets) {
      // Static assets answer before the worker (or instead of it: a version may have no code).
      const assets = def.assets;
      const hasWorker = def.modules.length > 0;
      const extra: (string | number)[] = [];
      if (timing) extra.push('server-timing', serverTiming(null, 0));
      serveAssets(assets, hasWorker, req, res, { path, pathAndQuery: rawUrl }, extra)
        .then((served) => {
          if (!served) return toWorker(worker);
          const totalMs = performance.now() - started;
          const fields = { worker, method, path, status: served.status, cpu_ms: 0, wall_ms: Number(totalMs.toFixed(3)), requestId, asset: true as const };
          if (served.error) access('warn', fields, { err: served.error.message });
          else access('info', fields);
        })
        .catch((error) => {
          logger.error({ err: String(error?.stack ?? error), worker }, 'ingress failure serving an asset');
          if (!res.headersSent) finish(500, ['content-type', 'text/plain; charset=utf-8'], 'Internal error\n', null);
          else res.destroy();
        });
      return;
    }
    toWorker(worker);

    function toWorker(worker: string): void {
    // Start the cold start now (on isolated-vm's threads), while the body is still on its way.
    const prewarm = runtime.isLive(worker) ? null : runtime.prewarm(worker);

    // Only a route with an origin keeps what the worker reads of the body, to pass it through.
    const routeOrigin = options.origins?.originFor(host, path) ?? null;
    let replayable: ReplayableBody | undefined;
    takeBody(req, maxBody, routeOrigin === null ? null : originBodyMax)
      .then(async ({ body, bodyStream, replay }) => {
        if (replay instanceof ReplayableBody) replayable = replay;
        const scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
        const peer = peerAddress(req.socket.remoteAddress);
        const { headers: requestHeaders, country } = incomingHeaders(req.rawHeaders, peer, trustProxy !== undefined && trustProxy(peer));
        const result = await runtime.fetch(worker, { method, url: `${scheme}://${host}${rawUrl}`, headers: requestHeaders, body, bodyStream, cfFields: cfFields(req, colo, country) }, requestId);
        if (prewarm) result.coldMs ??= await prewarm;
        if (result.refused !== undefined) {
          finish(503, ['content-type', 'text/plain; charset=utf-8', 'retry-after', '60'], `${result.refused}\n`, result, { err: result.refused });
          return;
        }
        if (result.limit) {
          finish(result.status, ['content-type', 'text/plain; charset=utf-8'], `Worker exceeded a resource limit: ${result.limit.message}\n`, result, { limit: result.limit.limit, err: result.limit.message });
          return;
        }
        if (result.loadError) {
          const loadError = options.mapError ? options.mapError(worker, result.loadError) : result.loadError;
          finish(result.status, ['content-type', 'text/plain; charset=utf-8'], `Worker failed to load: ${loadError}\n`, result, { err: loadError });
          return;
        }
        if (result.exception) {
          const origin = result.passThrough ? routeOrigin : null;
          // The body went into the isolate: forwarded only from what the host kept of it.
          const problem = origin === null || replay === undefined ? null : replay instanceof ReplayableBody ? replay.replayProblem() : (replay?.problem ?? null);
          if (origin !== null && options.origins && problem === null) {
            const again = replay instanceof ReplayableBody ? replay.replay() : (replay?.copy ?? null);
            await passThrough(options.origins, origin, { method, url: `${origin}${rawUrl}`, headers: requestHeaders, body: again }, result);
            return;
          }
          const stack = options.mapError ? options.mapError(worker, result.exception.stack) : result.exception.stack;
          const shown = options.exposeErrors ? stack : `${result.exception.name}: ${result.exception.message}`;
          const why = !result.passThrough ? '' : origin === null ? 'ctx.passThroughOnException() was called, but no origin is configured for this host (cinder serve --origin)\n' : `ctx.passThroughOnException() was called, but the request cannot be passed through to the origin: ${problem}\n`;
          finish(result.status, ['content-type', 'text/plain; charset=utf-8'], `Worker threw exception: ${shown}\n${why}request id: ${requestId}\n`, result, { err: stack });
          return;
        }
        const headers: (string | number)[] = [];
        for (const [name, value] of result.headers) {
          if (!HOP_BY_HOP.has(name)) headers.push(name, value);
        }
        if (result.stream) {
          const failure = await sendStream(res, method, result, headers, timing ? serverTiming(result, performance.now() - started) : null);
          const totalMs = performance.now() - started;
          const fields = { worker, method, path, status: result.status, cpu_ms: Number(result.cpuMs.toFixed(3)), wall_ms: Number(totalMs.toFixed(3)), cold_ms: result.coldMs ?? undefined, requestId, streamed: true as const };
          if (failure) access('warn', fields, { err: String((failure as { guest?: { stack: string } }).guest?.stack ?? failure.message) });
          else access('info', fields);
          return;
        }
        if (result.webSocket) {
          if (upgrading && options.webSockets) {
            // The worker accepted: the socket is the WebSocket host's from here on.
            res.detachSocket(upgrading.socket as Socket);
            options.webSockets.upgrade(req, upgrading.socket, upgrading.head, result.webSocket, result.headers);
            access('info', { worker, method, path, status: 101, cpu_ms: Number(result.cpuMs.toFixed(3)), wall_ms: Number((performance.now() - started).toFixed(3)), cold_ms: result.coldMs ?? undefined, requestId });
            return;
          }
          result.webSocket.owner.drop(result.webSocket.socketId);
          finish(500, ['content-type', 'text/plain; charset=utf-8'], NOT_AN_UPGRADE, result, { err: NOT_AN_UPGRADE.trim() });
          return;
        }
        const payload = result.body == null ? null : typeof result.body === 'string' ? result.body : new Uint8Array(result.body);
        finish(result.status, headers, payload, result);
      })
      .catch((error) => {
        if (error instanceof BodyTooLarge) {
          res.shouldKeepAlive = false;
          finish(413, ['content-type', 'text/plain; charset=utf-8', 'connection', 'close'], `Request body larger than the limit of ${maxBody} bytes.\n`, null);
        } else if (!res.headersSent) {
          logger.error({ err: String(error?.stack ?? error), worker }, 'ingress failure');
          finish(500, ['content-type', 'text/plain; charset=utf-8'], 'Internal error\n', null);
        } else {
          res.destroy();
        }
      })
      .catch((error) => {
        // The error path itself failed (it should not): never an unhandled rejection, which
        // would end the process for every tenant.
        logger.error({ err: String(error?.stack ?? error), worker }, 'ingress failure while answering an error');
        res.destroy();
      })
      // Not passed through: what was kept goes, and the unread rest of the upload drains.
      .finally(() => replayable?.release());
    }

    /** The worker threw after ctx.passThroughOnException(): answer with the origin's response. */
    async function passThrough(origins: OriginForwarder, origin: string, request: OriginRequest, result: RuntimeResponse): Promise<void> {
      const extra = { err: result.exception?.stack, passed_through: origin };
      let answer;
      try {
        answer = await origins.forward(request);
      } catch (error) {
        finish(502, ['content-type', 'text/plain; charset=utf-8'], `Worker threw exception and its request could not be passed through to the origin: ${(error as Error).message}\nrequest id: ${requestId}\n`, result, { ...extra, origin_error: (error as Error).message });
        return;
      }
      const headers: (string | number)[] = [];
      for (const [name, value] of answer.headers) if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push(name, value);
      const declared = answer.headers.find(([name]) => name.toLowerCase() === 'content-length');
      const stream = (async function* () {
        yield* answer.body;
      })();
      const failure = await sendStream(res, method, { ...result, status: answer.status, statusText: undefined, stream, bodyLength: declared ? Number(declared[1]) : undefined }, headers, timing ? serverTiming(result, performance.now() - started) : null);
      const totalMs = performance.now() - started;
      access(failure ? 'warn' : 'info', { worker, method, path, status: answer.status, cpu_ms: Number(result.cpuMs.toFixed(3)), wall_ms: Number(totalMs.toFixed(3)), cold_ms: result.coldMs ?? undefined, requestId }, failure ? { ...extra, origin_error: failure.message } : extra);
    }
  };

  const server = http.createServer({ keepAlive: true, noDelay: true }, (req, res) => handle(req, res));
  // Upgrade requests go to the worker like any request, answered on a response of their own over
  // the raw socket; only a 101 with a WebSocket hands the socket over (see handle).
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (!options.webSockets || !isWebSocketUpgrade(req)) {
      const what = options.webSockets ? `Upgrade to "${String(req.headers.upgrade)}" is not supported` : 'WebSockets are not enabled on this server';
      socket.end(`HTTP/1.1 501 Not Implemented\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(what) + 1}\r\n\r\n${what}\n`);
      return;
    }
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.on('finish', () => {
      res.detachSocket(socket as Socket);
      socket.end();
    });
    handle(req, res, { socket, head });
  });
  server.keepAliveTimeout = 65_000;
  return server;
}
