// The host log: pino JSON lines on stdout (or a given destination), level from CINDER_LOG_LEVEL.
import pino, { type Logger } from 'pino';
import { markKnownFormat } from '../data-plane/access-log.js';
import { logDestination, settleDestination } from './log-destination.js';

export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream | pino.DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.CINDER_LOG_LEVEL ?? 'info';
  const logger = pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, options.destination ?? logDestination());
  // The ingress may build its access lines by hand for this configuration (data-plane/access-log.ts).
  markKnownFormat(logger);
  return logger;
}

/** Every line logged so far written out, before the process exits: pino's own exit hook writes
 *  what is pending synchronously, but a chunk already handed to an asynchronous write may still be
 *  on its way, and the synchronous lines would then pass it (lines out of order at exit). */
export function flushLog(logger: Logger, timeoutMs = 2000): Promise<void> {
  return settleDestination((logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym], timeoutMs);
}

/** Exit once the log is written out (flushLog). */
export function exitAfterLog(logger: Logger, code: number): void {
  void flushLog(logger).finally(() => process.exit(code));
}

export type { Logger };
