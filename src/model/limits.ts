// Per-invocation and per-isolate limits (README "Limits"), and the error that ends an
// invocation which went over one.

export interface Limits {
  /** CPU time per invocation, from the isolate's thread CPU clock */
  cpuMs: number;
  /** wall-clock time per invocation, including waitUntil work */
  wallMs: number;
  /** V8 heap limit per isolate */
  memoryMb: number;
  /** outbound fetches and service calls per invocation */
  subrequests: number;
  /** total script size */
  scriptBytes: number;
  /** request body size accepted by ingress */
  requestBodyBytes: number;
  /** wall time allowed for the worker's top-level evaluation at load */
  startupMs: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  cpuMs: 50,
  wallMs: 30_000,
  memoryMb: 128,
  subrequests: 50,
  scriptBytes: 10 * 1024 * 1024,
  requestBodyBytes: 100 * 1024 * 1024,
  startupMs: 1_000,
});

export function resolveLimits(overrides?: Partial<Limits>): Limits {
  const limits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(overrides ?? {})) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_LIMITS)) throw new TypeError(`unknown limit "${key}"`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new TypeError(`limit "${key}" must be a positive number`);
    (limits as Record<string, number>)[key] = value;
  }
  return limits;
}

export type LimitKind = 'cpu' | 'wall' | 'memory' | 'subrequests';

const LIMIT_MESSAGES: Record<LimitKind, string> = {
  cpu: 'exceeded CPU time limit',
  wall: 'exceeded wall time limit',
  memory: 'exceeded memory limit',
  subrequests: 'exceeded subrequest limit',
};

/** An invocation went over a limit: answered with 503 and a message naming the limit. */
export class LimitExceededError extends Error {
  readonly limit: LimitKind;
  constructor(limit: LimitKind) {
    super(LIMIT_MESSAGES[limit]);
    this.name = 'LimitExceededError';
    this.limit = limit;
  }
}
