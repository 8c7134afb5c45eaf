// console.* inside the isolate: formatted here (util.format rules), shipped to the host log with
// the current invocation so the host can tag it with worker, version and request id.
import { hostSend } from './bridge.js';
import { currentInvocation } from './invocation.js';
import { formatLogArgs } from './api/inspect.js';
import { SEND_OPS } from '../protocol/wall.js';

type Level = 'debug' | 'info' | 'log' | 'warn' | 'error';

// The host keeps at most this much of a line (src/runtime/log-budget.ts); cutting here spares
// copying the rest across the wall. The full length goes along for the host's marker.
const MAX_LINE_CHARS = 16 * 1024;

function emit(level: Level, args: unknown[]): void {
  const line = formatLogArgs(args);
  if (line.length > MAX_LINE_CHARS) hostSend(SEND_OPS.log, level, line.slice(0, MAX_LINE_CHARS), currentInvocation(), line.length);
  else hostSend(SEND_OPS.log, level, line, currentInvocation());
}

const counts = new Map<string, number>();
const timers = new Map<string, number>();
let groupIndent = '';

function indent(args: unknown[]): unknown[] {
  return groupIndent ? [groupIndent + formatLogArgs(args)] : args;
}

export const console = {
  log: (...args: unknown[]) => emit('log', indent(args)),
  info: (...args: unknown[]) => emit('info', indent(args)),
  debug: (...args: unknown[]) => emit('debug', indent(args)),
  warn: (...args: unknown[]) => emit('warn', indent(args)),
  error: (...args: unknown[]) => emit('error', indent(args)),
  trace: (...args: unknown[]) => {
    const stack = (new Error().stack ?? '').split('\n').slice(2).join('\n');
    emit('debug', indent([`Trace: ${formatLogArgs(args)}\n${stack}`]));
  },
  assert: (condition?: unknown, ...args: unknown[]) => {
    if (!condition) emit('error', indent(['Assertion failed' + (args.length ? ': ' + formatLogArgs(args) : '')]));
  },
  count: (label = 'default') => {
    const n = (counts.get(String(label)) ?? 0) + 1;
    counts.set(String(label), n);
    emit('info', indent([`${label}: ${n}`]));
  },
  countReset: (label = 'default') => void counts.delete(String(label)),
  time: (label = 'default') => void timers.set(String(label), Date.now()),
  timeLog: (label = 'default', ...args: unknown[]) => {
    const start = timers.get(String(label));
    if (start !== undefined) emit('info', indent([`${label}: ${Date.now() - start}ms`, ...args]));
  },
  timeEnd: (label = 'default') => {
    const start = timers.get(String(label));
    if (start === undefined) return;
    timers.delete(String(label));
    emit('info', indent([`${label}: ${Date.now() - start}ms`]));
  },
  group: (...args: unknown[]) => {
    if (args.length) emit('log', indent(args));
    groupIndent += '  ';
  },
  groupCollapsed: (...args: unknown[]) => console.group(...args),
  groupEnd: () => void (groupIndent = groupIndent.slice(2)),
  table: (data: unknown) => emit('log', indent([data])),
  dir: (data: unknown) => emit('log', indent([data])),
};
