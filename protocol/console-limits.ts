// What a worker's console may write to the host log. Both sides count the same way: the guest
// stops sending once its invocation's budget is spent (sparing the copies across the wall and the
// host's handling of each line), and the host enforces the same budget whatever the guest sends.

/** Longest console line kept whole, in characters (as workerd's tail does, per message). */
export const MAX_LOG_LINE_CHARS = 16 * 1024;
/** Console output one invocation may write, in characters. */
export const MAX_LOG_CHARS_PER_INVOCATION = 256 * 1024;
/**
 * What a line costs at least, in characters: the host wraps every line in a JSON record (time,
 * level, worker, version, request id) of about this size, so a flood of empty lines is bounded
 * by the records it makes the host write, not by its few characters.
 */
export const LOG_LINE_FLOOR_CHARS = 128;

/** The budget a line of `length` characters takes (cut lines count as cut). */
export function logLineCost(length: number): number {
  return Math.min(length, MAX_LOG_LINE_CHARS) + LOG_LINE_FLOOR_CHARS;
}
