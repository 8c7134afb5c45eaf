// Admin endpoints for observability, mounted at "/" by `cinder serve` (behind the admin bearer
// auth, like every admin route):
//
//   GET /metrics                         Prometheus text format (prom-client), every name cinder_*
//   GET /workers/:name/usage?from=&to=   {requests, errors, cpu_ms: {sum, p50, p99},
//                                         wall_ms: {sum, p50, p99}, gb_s, ...}
//                                         from/to: ISO 8601, ms since the epoch, or an age such as
//                                         "15m", "2h", "7d"; default: the last 24 hours
//   GET /workers/:name/tail              live tail, text/event-stream: events "invocation", "log",
//                                         "exception" (data: JSON), ": heartbeat" comments
//   GET /workers/:name/log-level         {worker, level, default}
//   PUT /workers/:name/log-level         {"level": "debug"|"info"|"warn"|"error"|"silent"|null}
//   GET /workers/:name/schedules         {crons: [{cron, next, running}]}
import { Hono, type Context } from 'hono';
import type { Metrics } from '../observability/metrics.js';
import type { TailEvent, TailHub } from '../observability/tail.js';
import type { UsageMeter } from '../observability/usage.js';
import type { CronScheduler } from '../data-plane/cron.js';
import { badRequest, notFound } from './errors.js';
import { jsonObjectBody } from './json-body.js';

export interface ObservabilityRoutesOptions {
  /** is a worker of this name deployed */
  hasWorker(name: string): boolean;
  metrics: Metrics;
  usage: UsageMeter;
  tail: TailHub;
  scheduler?: CronScheduler;
  logLevels: {
    get(worker: string): { level: string; default: boolean };
    set(worker: string, level: string | null): void;
  };
  /** SSE comment sent this often so proxies and clients see the tail is alive (default 15 s) */
  heartbeatMs?: number;
  /** bytes of tail events queued for a slow client before events are dropped (default 1 MiB) */
  tailBufferBytes?: number;
}

export const WORKER_LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** A time parameter: ISO 8601, ms since the epoch, or an age ("15m", "2h", "7d") before `now`. */
export function parseTimeParam(value: string, now = Date.now()): number | null {
  const text = value.trim();
  const age = DURATION.exec(text);
  if (age) return now - Number(age[1]) * UNIT_MS[age[2]];
  if (/^\d+$/.test(text)) return Number(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const parsed = Date.parse(text);
    return Number.isNaN(parsed) ? null : parsed;
  }
  return null;
}

export function observabilityRoutes(options: ObservabilityRoutesOptions): Hono {
  const app = new Hono();
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const bufferBytes = options.tailBufferBytes ?? 1024 * 1024;

  const requireWorker = (c: Context): string => {
    const name = c.req.param('name') ?? '';
    if (!options.hasWorker(name)) throw notFound(`no worker named "${name}"`);
    return name;
  };

  app.get('/metrics', async (c) => {
    const { contentType, body } = await options.metrics.render();
    return c.body(body, 200, { 'content-type': contentType });
  });

  app.get('/workers/:name/usage', async (c) => {
    const name = c.req.param('name');
    const now = Date.now();
    const time = (param: 'from' | 'to', fallback: number) => {
      const raw = c.req.query(param);
      if (raw === undefined || raw === '') return fallback;
      const parsed = parseTimeParam(raw, now);
      if (parsed === null) throw badRequest(`${param}: "${raw}" is not a time; use ISO 8601 (2025-01-31T12:00:00Z), ms since the epoch, or an age such as 15m, 2h, 7d`);
      return parsed;
    };
    const to = time('to', now);
    const from = time('from', to - 86_400_000);
    if (from > to) throw badRequest(`from (${new Date(from).toISOString()}) is after to (${new Date(to).toISOString()})`);
    const summary = await options.usage.usage(name, from, to);
    if (summary.requests === 0 && !options.hasWorker(name)) throw notFound(`no worker named "${name}" and no usage recorded for that name`);
    return c.json(summary);
  });

  app.get('/workers/:name/log-level', (c) => {
    const name = requireWorker(c);
    return c.json({ worker: name, ...options.logLevels.get(name) });
  });

  app.put('/workers/:name/log-level', async (c) => {
    const name = requireWorker(c);
    const { level } = await jsonObjectBody(c, 'the body must be JSON such as {"level": "warn"} (or {"level": null} for the server\'s level)');
    if (level !== null && !(WORKER_LOG_LEVELS as readonly unknown[]).includes(level)) {
      throw badRequest(`level must be one of ${WORKER_LOG_LEVELS.join(', ')}, or null for the server's level`);
    }
    options.logLevels.set(name, level as string | null);
    return c.json({ worker: name, ...options.logLevels.get(name) });
  });

  app.get('/workers/:name/schedules', (c) => {
    const name = requireWorker(c);
    const crons = (options.scheduler?.schedules(name) ?? []).map((s) => ({ cron: s.cron, next: s.next?.toISOString() ?? null, running: s.running }));
    return c.json({ worker: name, crons });
  });

  app.get('/workers/:name/tail', (c) => {
    const name = requireWorker(c);
    const encoder = new TextEncoder();
    const signal = c.req.raw.signal;
    let cleanup = () => {};
    const stream = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          let dropped = 0;
          let closed = false;
          const send = (text: string) => {
            if (closed) return;
            // A client that does not keep up loses events (and is told how many), rather than
            // making the server hold an unbounded queue for it.
            if ((controller.desiredSize ?? 0) <= 0) {
              dropped++;
              return;
            }
            if (dropped) {
              controller.enqueue(encoder.encode(`event: dropped\ndata: ${JSON.stringify({ type: 'dropped', count: dropped })}\n\n`));
              dropped = 0;
            }
            controller.enqueue(encoder.encode(text));
          };
          const unsubscribe = options.tail.subscribe(name, (event: TailEvent) => send(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`));
          const heartbeat = setInterval(() => send(`: heartbeat ${new Date().toISOString()}\n\n`), heartbeatMs);
          heartbeat.unref();
          cleanup = () => {
            if (closed) return;
            closed = true;
            clearInterval(heartbeat);
            unsubscribe();
            try {
              controller.close();
            } catch {
              // already closed or errored
            }
          };
          signal.addEventListener('abort', () => cleanup(), { once: true });
          if (signal.aborted) return cleanup();
          // Tell the client it is subscribed: events from now on reach it.
          controller.enqueue(encoder.encode(`retry: 2000\nevent: ready\ndata: ${JSON.stringify({ type: 'ready', worker: name })}\n\n`));
        },
        cancel() {
          cleanup();
        },
      },
      { highWaterMark: bufferBytes, size: (chunk) => chunk.byteLength },
    );
    return new Response(stream, {
      status: 200,
      headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' },
    });
  });

  return app;
}
