// Uncaught errors from timers and microtasks: Workers logs them and carries on.
import { emitLine } from './console.js';
import type { GuestException } from '../protocol/wall.js';

export function describeError(error: unknown): GuestException {
  if (error instanceof Error) {
    return { name: error.name, message: error.message, stack: String(error.stack ?? `${error.name}: ${error.message}`) };
  }
  let message: string;
  try {
    message = typeof error === 'string' ? error : JSON.stringify(error) ?? String(error);
  } catch {
    message = String(error);
  }
  return { name: 'Error', message, stack: `Uncaught ${message}` };
}

export function reportError(error: unknown): void {
  const { stack } = describeError(error);
  // Cut and counted as a console line: a listener throwing a megabyte string a thousand times
  // must not copy a gigabyte across the wall.
  emitLine('error', `Uncaught ${stack}`);
}
