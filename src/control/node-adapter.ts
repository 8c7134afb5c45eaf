// Serves a web-standard fetch handler (the hono admin app) on node:http: IncomingMessage becomes a
// Request whose body streams (uploads are not buffered twice), the Response is streamed back (so
// server-sent events work), and a client that goes away aborts the request's signal.
import http from 'node:http';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { drained } from '../data-plane/drained.js';

export type FetchHandler = (request: Request) => Response | Promise<Response>;

export function createFetchServer(handler: FetchHandler, logger: Logger): http.Server {
  return http.createServer(async (req, res) => {
    const controller = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    try {
      const method = req.method ?? 'GET';
      const headers = new Headers();
      for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
      const hasBody = method !== 'GET' && method !== 'HEAD';
      const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
        method,
        headers,
        body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
        signal: controller.signal,
        // @ts-expect-error -- required by undici for a streamed body; not yet in lib.dom's RequestInit
        duplex: 'half',
      });
      const response = await handler(request);
      // Answered before the body arrived (401 to an upload, 413): close rather than read and
      // discard whatever the client still sends.
      if (hasBody && !req.complete) res.shouldKeepAlive = false;
      await writeResponse(response, res);
    } catch (error) {
      logger.error({ err: (error as Error)?.stack ?? String(error) }, 'admin server failure');
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal error' }));
      } else {
        res.destroy();
      }
    }
  });
}

async function writeResponse(response: Response, res: http.ServerResponse): Promise<void> {
  const headers: string[] = [];
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers.push(name, value);
  });
  for (const cookie of response.headers.getSetCookie()) headers.push('set-cookie', cookie);
  if (response.headers.get('connection')?.toLowerCase() === 'close') res.shouldKeepAlive = false;
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // Respect backpressure, and stop when the client has gone.
      if (!res.write(value)) await drained(res);
      if (res.destroyed) break;
    }
    res.end();
  } finally {
    reader.cancel().catch(() => {});
  }
}

