// SCAFFOLD — replaced by the platform-family implementation.
export const platformGlobals: Record<string, unknown> = {};
