// The access line built by hand (data-plane/access-log.ts) is byte for byte pino's line for the
// same fields, for the logger configuration of observability/logger.ts.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { createLogger } from '../../src/observability/logger.js';
import { accessLog, type AccessFields } from '../../src/data-plane/access-log.js';

function capture(level = 'info') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}

const sameTime = (line: string) => line.replace(/"time":"[^"]*"/, '"time":"T"');

const CASES: AccessFields[] = [
  { worker: 'hello', method: 'GET', path: '/', status: 200, cpu_ms: 0.123, wall_ms: 1.5, requestId: 'abc0000000001' },
  { worker: null, method: 'GET', path: '/no/"such"\\worker', status: 404, cpu_ms: 0, wall_ms: 0.042, requestId: 'abc0000000002' },
  { worker: 'w', method: 'POST', path: '/caf\u00e9/\u0001\u001f\u007f/\u00ff', status: 201, cpu_ms: 12, wall_ms: 30000, cold_ms: 0.61234, requestId: 'r' },
  { worker: 'w', method: 'GET', path: '/s', status: 200, cpu_ms: Number.NaN, wall_ms: Number.POSITIVE_INFINITY, requestId: 'r', streamed: true },
  { worker: 'w', method: 'GET', path: '/' + 'x'.repeat(300), status: 503, cpu_ms: 50.001, wall_ms: 1e21, cold_ms: 0, requestId: 'r' },
];

describe('access log line', () => {
  it('is what pino writes for the same fields, at info and warn', () => {
    for (const level of ['info', 'warn'] as const) {
      for (const fields of CASES) {
        const fast = capture();
        accessLog(fast.logger)(level, fields);
        const slow = capture();
        slow.logger[level](fields, 'request');
        expect(fast.lines.length).toBe(1);
        expect(sameTime(fast.lines[0])).toBe(sameTime(slow.lines[0]));
        expect(JSON.parse(fast.lines[0]).time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      }
    }
  });

  it('keeps extra fields (through pino) and honours the level', () => {
    const fast = capture('warn');
    const write = accessLog(fast.logger);
    write('info', CASES[0]);
    write('warn', CASES[0], { limit: 'cpu', err: 'Worker exceeded its CPU time limit' });
    expect(fast.lines.length).toBe(1);
    expect(JSON.parse(fast.lines[0])).toMatchObject({ level: 40, worker: 'hello', limit: 'cpu', err: 'Worker exceeded its CPU time limit', msg: 'request' });
    const silent = capture('silent');
    accessLog(silent.logger)('warn', CASES[0]);
    expect(silent.lines).toEqual([]);
  });

  it('goes through pino for loggers it does not know', () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    accessLog(logger)('info', CASES[0]);
    expect(JSON.parse(lines[0])).toMatchObject({ pid: process.pid, worker: 'hello', msg: 'request' });
  });
});
