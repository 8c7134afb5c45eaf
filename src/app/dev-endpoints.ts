// Endpoints `cinder dev` answers itself, before any worker sees the request, as wrangler dev does:
//
//   GET /__scheduled?cron=<expr>[&time=<ms>][&worker=<name>]
//   GET /cdn-cgi/handler/scheduled?cron=...       (wrangler's newer spelling)
//
// fire one scheduled event at the worker the Host names (or the default worker, or ?worker=) and
// answer 200 "Ran scheduled event" when its scheduled() handler finished, 500 with the stack when
// it threw, 503 when it went over a limit. Only in dev: `cinder serve` never intercepts a path.
import type http from 'node:http';
import type { Logger } from 'pino';
import type { Runtime } from '../runtime/runtime.js';
import type { Router } from '../data-plane/router.js';

const SCHEDULED_PATHS = new Set(['/__scheduled', '/cdn-cgi/handler/scheduled']);

export interface DevEndpointOptions {
  runtime: Runtime;
  router: Router;
  logger: Logger;
  /** rewrite a worker's stack before it is shown or logged (source maps) */
  mapError?: (worker: string, text: string) => string;
}

/** Put the dev endpoints in front of `server`'s request handler (the ingress). */
export function installDevEndpoints(server: http.Server, options: DevEndpointOptions): void {
  const handlers = server.listeners('request') as ((req: http.IncomingMessage, res: http.ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const rawUrl = req.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    if (SCHEDULED_PATHS.has(path)) {
      req.resume();
      void scheduled(req, res, new URLSearchParams(queryAt === -1 ? '' : rawUrl.slice(queryAt + 1)), path, options);
      return;
    }
    for (const handler of handlers) handler.call(server, req, res);
  });
}

function reply(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function scheduled(req: http.IncomingMessage, res: http.ServerResponse, query: URLSearchParams, path: string, options: DevEndpointOptions): Promise<void> {
  const { runtime, router, logger } = options;
  const worker = query.get('worker') ?? router.resolve(req.headers.host ?? 'localhost', path);
  if (!worker || !runtime.has(worker)) {
    reply(res, 404, `No worker to run the scheduled event on${worker ? ` (no worker named "${worker}")` : ''}: name one with ?worker=<name> or the Host header (<name>.localhost).\n`);
    return;
  }
  // As wrangler: the cron string is handed to the handler as given (it is not validated here).
  const cron = query.get('cron') ?? '';
  const timeParam = query.get('time');
  const scheduledTime = timeParam === null || timeParam === '' ? Date.now() : Number(timeParam);
  if (!Number.isFinite(scheduledTime)) {
    reply(res, 400, `time must be ms since the epoch (got "${timeParam}")\n`);
    return;
  }
  try {
    const result = await runtime.scheduled(worker, cron, scheduledTime);
    if (result.error && options.mapError) result.error = options.mapError(worker, result.error);
    const fields = { worker, cron, requestId: result.requestId, outcome: result.outcome, scheduled: true };
    if (result.outcome === 'ok') {
      logger.info(fields, 'scheduled event');
      reply(res, 200, 'Ran scheduled event\n');
    } else if (result.outcome === 'limit') {
      logger.warn({ ...fields, err: result.error }, 'scheduled event');
      reply(res, 503, `Scheduled event exceeded a resource limit: ${result.error}\n`);
    } else {
      logger.error({ ...fields, err: result.error }, 'scheduled event');
      reply(res, 500, `Scheduled event failed: ${result.error}\n`);
    }
  } catch (error) {
    logger.error({ worker, cron, err: (error as Error).stack ?? String(error) }, 'scheduled event');
    reply(res, 500, `Scheduled event failed: ${(error as Error).message}\n`);
  }
}
