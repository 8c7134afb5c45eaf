// SCAFFOLD — replaced by the platform-family implementation.
export function formatLogArgs(args: unknown[]): string { return args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '); }
