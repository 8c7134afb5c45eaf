// esbuild's failures as a person reads them: each error with its file:line:col, the source line
// and a caret under the spot (esbuild's own code frames), rather than one flattened message.
import { formatMessagesSync, type Message } from 'esbuild';

export function formatBuildError(error: unknown, options: { color?: boolean } = {}): string {
  const errors = (error as { errors?: Message[] } | null)?.errors;
  if (!Array.isArray(errors) || !errors.length) return error instanceof Error ? error.message : String(error);
  return formatMessagesSync(errors, { kind: 'error', color: options.color ?? false }).join('').trimEnd();
}
