// The log of `cinder dev`: pino's JSON lines turned into lines a person reads in a terminal
// (time, level, worker, message; a worker's own ANSI colours kept as colours), or left as JSON
// when stdout is piped or --log-format json asks for it. Either way, stacks in a line about a
// worker are mapped to its sources (dev-source-maps.ts) first.
import { format } from 'node:util';

export type DevLogFormat = 'pretty' | 'json';

export interface DevLogStreamOptions {
  format: DevLogFormat;
  /** colour the level, worker and status (never affects a worker's own escapes) */
  color: boolean;
  /** where lines go (default stdout) */
  write?: (text: string) => void;
}

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '90'],
  20: ['DEBUG', '90'],
  30: ['INFO', '32'],
  40: ['WARN', '33'],
  50: ['ERROR', '31'],
  60: ['FATAL', '35'],
};

// Fields shown in the line's own layout, not as key=value.
const SHOWN = new Set(['level', 'time', 'msg', 'worker', 'err', 'version', 'requestId', 'console', 'pid', 'hostname', 'method', 'path', 'status', 'cpu_ms', 'wall_ms', 'cold_ms', 'streamed']);

export class DevLogStream {
  /** maps stacks in a line about `worker`; set once the dev server knows its source maps */
  mapStack: ((worker: string, text: string) => string) | null = null;
  private readonly out: (text: string) => void;

  constructor(private readonly options: DevLogStreamOptions) {
    this.out = options.write ?? ((text) => void process.stdout.write(text));
  }

  /** pino's destination interface: one or more complete JSON lines per call. */
  write(chunk: string): boolean {
    for (const line of chunk.split('\n')) if (line) this.line(line);
    return true;
  }

  private line(line: string): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line);
    } catch {
      return this.out(line + '\n');
    }
    let mapped = false;
    if (this.mapStack && typeof record.worker === 'string') {
      for (const key of ['msg', 'err'] as const) {
        if (typeof record[key] !== 'string') continue;
        const text = this.mapStack(record.worker, record[key] as string);
        if (text !== record[key]) [record[key], mapped] = [text, true];
      }
    }
    if (this.options.format === 'json') return this.out(mapped ? JSON.stringify(record) + '\n' : line + '\n');
    this.out(this.pretty(record) + '\n');
  }

  private paint(code: string, text: string): string {
    return this.options.color ? `\x1b[${code}m${text}\x1b[39m` : text;
  }

  private dim(text: string): string {
    return this.options.color ? `\x1b[2m${text}\x1b[22m` : text;
  }

  private pretty(r: Record<string, unknown>): string {
    const time = typeof r.time === 'string' || typeof r.time === 'number' ? new Date(r.time).toTimeString().slice(0, 8) : '';
    const [label, colour] = LEVELS[r.level as number] ?? ['LOG', '39'];
    const parts = [this.dim(time), this.paint(colour, label.padEnd(5))];
    if (typeof r.worker === 'string') parts.push(this.paint('36', `[${r.worker}]`));
    const msg = typeof r.msg === 'string' ? r.msg : '';
    if (msg === 'request' && typeof r.method === 'string') {
      const status = Number(r.status);
      const statusColour = status >= 500 ? '31' : status >= 400 ? '33' : status >= 300 ? '36' : '32';
      parts.push(`${r.method} ${r.path} ${this.paint(statusColour, String(r.status))}`);
      const timing = [`${r.wall_ms} ms`, `cpu ${r.cpu_ms} ms`, r.cold_ms !== undefined ? `cold ${Number(r.cold_ms).toFixed(1)} ms` : null, r.streamed ? 'streamed' : null].filter(Boolean);
      parts.push(this.dim(`(${timing.join(', ')})`));
    } else if (typeof r.console === 'string') {
      // The worker's console line as it wrote it, escapes and all: Hono's coloured logger shows in colour.
      parts.push(msg);
    } else {
      parts.push(msg);
    }
    const extra = Object.entries(r)
      .filter(([key, value]) => !SHOWN.has(key) && value !== undefined)
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : format('%j', value)}`);
    if (extra.length) parts.push(this.dim(extra.join(' ')));
    let text = parts.join(' ');
    if (r.err !== undefined) text += '\n' + indent(typeof r.err === 'string' ? r.err : format('%j', r.err));
    return text;
  }
}

const indent = (text: string) => text.replace(/^/gm, '  ');
