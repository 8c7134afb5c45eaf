// Errors the control plane answers with: a status and a message that says what was wrong and,
// where it helps, what to do. Thrown anywhere below the HTTP layer; app.ts turns them into JSON
// `{ "error": message, ...details }`.
export class ControlError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 500,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

export const badRequest = (message: string, details?: Record<string, unknown>) => new ControlError(400, message, details);
export const notFound = (message: string) => new ControlError(404, message);
export const conflict = (message: string, details?: Record<string, unknown>) => new ControlError(409, message, details);
export const tooLarge = (message: string, details?: Record<string, unknown>) => new ControlError(413, message, details);
