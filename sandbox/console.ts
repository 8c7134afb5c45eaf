// console.* inside the isolate: formatted here (util.format rules), shipped to the host log with
// the current invocation so the host can tag it with worker, version and request id.
import { hostSend } from './bridge.js';
import { currentInvocation, invocation, type InvocationState } from './invocation.js';
import { formatLogArgs } from './api/inspect.js';
import { SEND_OPS } from '../protocol/wall.js';
import { MAX_LOG_CHARS_PER_INVOCATION, MAX_LOG_LINE_CHARS, logLineCost } from '../protocol/console-limits.js';

type Level = 'debug' | 'info' | 'log' | 'warn' | 'error';

function emit(level: Level, args: unknown[]): void {
  emitLine(level, formatLogArgs(args));
}

/** A line for the host log, through the invocation's console budget (uncaught errors use it too). */
export function emitLine(level: Level, line: string): void {
  const id = currentInvocation();
  // The invocation's budget, counted as the host counts it: past it, lines are only counted here
  // and reported together (reportDroppedLines), not each copied across the wall to be dropped.
  const state = invocation(id);
  if (state) {
    if (state.logUsed >= MAX_LOG_CHARS_PER_INVOCATION) {
      state.logDroppedLines++;
      state.logDroppedChars += line.length;
      if (!state.logDropReported) reportDroppedLines(state);
      return;
    }
    state.logUsed += logLineCost(line.length);
  }
  // The host keeps at most MAX_LOG_LINE_CHARS of a line: cutting here spares copying the rest.
  // The full length goes along for the host's marker.
  if (line.length > MAX_LOG_LINE_CHARS) hostSend(SEND_OPS.log, level, line.slice(0, MAX_LOG_LINE_CHARS), id, line.length);
  else hostSend(SEND_OPS.log, level, line, id);
}

/** Tell the host about console lines dropped and not yet reported (at the first, and at the end). */
export function reportDroppedLines(state: InvocationState): void {
  if (state.logDroppedLines === 0) return;
  hostSend(SEND_OPS.logDropped, state.id, state.logDroppedLines, state.logDroppedChars);
  state.logDroppedLines = 0;
  state.logDroppedChars = 0;
  state.logDropReported = true;
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
