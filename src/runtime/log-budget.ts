// Bounds on what a worker's console may write to the host log: every line costs the host a copy,
// a JSON encoding and a write, and a guest can emit them far faster than the log can take them.
// Long lines are cut with a marker; past the per-invocation budget lines are dropped and counted
// (the guest counts the lines it no longer sends and reports them in one message); and a worker's
// invocations together may write only so much per second (LogRate), so many requests do not add
// up to a flood either.
import { MAX_LOG_CHARS_PER_INVOCATION, MAX_LOG_LINE_CHARS, logLineCost } from '../../protocol/console-limits.js';

export { MAX_LOG_CHARS_PER_INVOCATION, MAX_LOG_LINE_CHARS };

export class LogBudget {
  used = 0;
  droppedLines = 0;
  droppedChars = 0;

  /**
   * The line to write, cut to size, or null once the budget is spent. `fullLength`: the line's
   * length before anyone cut it (the guest cuts before sending, to spare the copy). `first`: this
   * is the first line dropped (the caller says so in the log once).
   */
  take(message: string, fullLength = message.length): { line: string; first: boolean } | null {
    const length = Math.max(fullLength, message.length);
    if (this.used >= MAX_LOG_CHARS_PER_INVOCATION) {
      return this.dropped(1, length) ? { line: '', first: true } : null;
    }
    let line = message;
    if (length > MAX_LOG_LINE_CHARS) {
      line = `${message.slice(0, MAX_LOG_LINE_CHARS)}… [truncated: ${length - MAX_LOG_LINE_CHARS} more characters]`;
    }
    this.used += logLineCost(length);
    return { line, first: false };
  }

  /** Count lines dropped (here, by the rate, or by the guest); true when they are the first. */
  dropped(lines: number, chars: number): boolean {
    const first = this.droppedLines === 0 && lines > 0;
    this.droppedLines += lines;
    this.droppedChars += chars;
    return first;
  }
}

/** Console characters per second one worker may write across its invocations, and the burst. */
export interface LogRateLimit {
  charsPerSecond: number;
  burstChars: number;
}

export const DEFAULT_LOG_RATE: LogRateLimit = { charsPerSecond: 1024 * 1024, burstChars: 4 * MAX_LOG_CHARS_PER_INVOCATION };

/** A token bucket of console characters for one worker. */
export class LogRate {
  private tokens: number;
  private at = performance.now();
  /** when the last "rate reached" notice was written (one a second at most) */
  noticedAt = -Infinity;

  constructor(private readonly limit: LogRateLimit = DEFAULT_LOG_RATE) {
    this.tokens = limit.burstChars;
  }

  get charsPerSecond(): number {
    return this.limit.charsPerSecond;
  }

  take(cost: number): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.limit.burstChars, this.tokens + ((now - this.at) / 1000) * this.limit.charsPerSecond);
    this.at = now;
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }

  /** True at most once a second: time to say in the log that lines are being dropped. */
  shouldNotice(): boolean {
    const now = performance.now();
    if (now - this.noticedAt < 1000) return false;
    this.noticedAt = now;
    return true;
  }
}
