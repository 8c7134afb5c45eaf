// Bounds on what a worker's console may write to the host log: every line costs the host a copy,
// a JSON encoding and a write, and a guest can emit them far faster than the log can take them.
// Long lines are cut with a marker; past the per-invocation budget lines are dropped and counted.

/** Longest console line kept whole, in characters (as workerd's tail does, per message). */
export const MAX_LOG_LINE_CHARS = 16 * 1024;
/** Console output one invocation may write, in characters. */
export const MAX_LOG_CHARS_PER_INVOCATION = 256 * 1024;

export class LogBudget {
  used = 0;
  droppedLines = 0;
  droppedChars = 0;

  /**
   * The line to write, cut to size, or null once the budget is spent. `fullLength`: the line's
   * length before anyone cut it (the guest cuts before sending, to spare the copy).
   */
  take(message: string, fullLength = message.length): { line: string; first: boolean } | null {
    const length = Math.max(fullLength, message.length);
    if (this.used >= MAX_LOG_CHARS_PER_INVOCATION) {
      const first = this.droppedLines === 0;
      this.droppedLines++;
      this.droppedChars += length;
      return first ? { line: '', first: true } : null;
    }
    let line = message;
    if (length > MAX_LOG_LINE_CHARS) {
      line = `${message.slice(0, MAX_LOG_LINE_CHARS)}… [truncated: ${length - MAX_LOG_LINE_CHARS} more characters]`;
    }
    this.used += line.length;
    return { line, first: false };
  }
}
