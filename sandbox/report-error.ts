// Uncaught errors from timers and microtasks: Workers logs them and carries on.
import { hostSend } from './bridge.js';
import { currentInvocation } from './invocation.js';
import { SEND_OPS, type GuestException } from '../protocol/wall.js';

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
  hostSend(SEND_OPS.log, 'error', `Uncaught ${stack}`, currentInvocation());
}
