// The host log: pino JSON lines on stdout (or a given destination), level from CINDER_LOG_LEVEL.
import pino, { type Logger } from 'pino';

export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream | pino.DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.CINDER_LOG_LEVEL ?? 'info';
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, options.destination ?? pino.destination({ sync: false }));
}

export type { Logger };
