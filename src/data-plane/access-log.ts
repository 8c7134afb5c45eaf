// The per-request access log line ("request"), written by the ingress. For a logger made by
// observability/logger.ts (pino, no base fields, ISO time: a configuration known here) the line is
// built by hand, byte for byte what pino would write, and handed to the destination pino writes
// to, so lines stay in order; other loggers, and lines with extra fields, go through pino.
import pino, { type Logger } from 'pino';

/** Loggers whose line format is pino's with `base: undefined` and the ISO time. */
const knownFormat = new WeakSet<Logger>();

export function markKnownFormat(logger: Logger): void {
  knownFormat.add(logger);
}

/** The fields of the access log line ("request"), in the order they are written. */
export interface AccessFields {
  worker: string | null;
  method: string;
  path: string;
  status: number;
  cpu_ms: number;
  wall_ms: number;
  cold_ms?: number;
  requestId: string;
  streamed?: true;
}

export type AccessLog = (level: 'info' | 'warn', fields: AccessFields, extra?: Record<string, unknown>) => void;

// JSON values as pino writes them: non-finite numbers become null; strings as JSON.stringify
// escapes them (pino's own escaper differs only on lone surrogates, which a worker name, a method,
// a request id or a path decoded by node:http as latin1 cannot hold).
const num = (n: number) => (Number.isFinite(n) ? String(n) : 'null');
const str = (s: string | null) => (s === null ? 'null' : JSON.stringify(s));

/** The writer of `logger`'s access lines: a string template instead of pino's generic object
 *  walk, the ISO time reused within a millisecond. */
export function accessLog(logger: Logger): AccessLog {
  const viaPino: AccessLog = (level, fields, extra) => logger[level](extra ? { ...fields, ...extra } : fields, 'request');
  if (!knownFormat.has(logger)) return viaPino;
  const stream = (logger as unknown as Record<symbol, { write(line: string): unknown }>)[pino.symbols.streamSym];
  let lastMs = -1;
  let lastTime = '';
  return (level, fields, extra) => {
    if (extra) return viaPino(level, fields, extra);
    if (!logger.isLevelEnabled(level)) return;
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      lastTime = new Date(now).toISOString();
    }
    stream.write(
      `{"level":${level === 'info' ? 30 : 40},"time":"${lastTime}","worker":${str(fields.worker)},"method":${str(fields.method)},"path":${str(fields.path)},"status":${num(fields.status)},"cpu_ms":${num(fields.cpu_ms)},"wall_ms":${num(fields.wall_ms)}${fields.cold_ms === undefined ? '' : `,"cold_ms":${num(fields.cold_ms)}`},"requestId":${str(fields.requestId)}${fields.streamed ? ',"streamed":true' : ''},"msg":"request"}\n`,
    );
  };
}

