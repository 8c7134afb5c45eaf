// The host log: pino JSON lines on stdout (or a given destination), level from CINDER_LOG_LEVEL.
import pino, { type Logger } from 'pino';
import { markKnownFormat } from '../data-plane/access-log.js';
import { logDestination } from './log-destination.js';

export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream | pino.DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.CINDER_LOG_LEVEL ?? 'info';
  const logger = pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, options.destination ?? logDestination());
  // The ingress may build its access lines by hand for this configuration (data-plane/access-log.ts).
  markKnownFormat(logger);
  return logger;
}

export type { Logger };
