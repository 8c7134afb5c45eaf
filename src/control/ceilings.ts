// The operator's ceilings on per-worker limits (DESIGN.md rule 4): a tenant picks its limits
// within them, and an upload over one is refused with a 400 naming the limit and the ceiling.
// Without ceilings a tenant could ask for `cpu_ms: 1e308` or `memory_mb: 100000` and hold the
// host for as long as it liked. Versions stored before a ceiling was lowered are not refused
// when they come back (restart, rollback): they run clamped to the ceiling, with a log line.
import { DEFAULT_LIMITS, type Limits } from '../model/limits.js';

/** Ceilings have the shape of the limits they cap. */
export type LimitCeilings = Limits;

/**
 * Where the operator may put a ceiling at most: CPU time per invocation is held by the thread
 * that runs it, so even the operator cannot give a tenant more than 30 s of it.
 */
export const HARD_MAXIMUMS: Readonly<Partial<Limits>> = Object.freeze({ cpuMs: 30_000 });

/** The ceilings of a server started without flags: room above the defaults, far below harm. */
export const DEFAULT_CEILINGS: Readonly<LimitCeilings> = Object.freeze({
  cpuMs: 1_000,
  wallMs: 120_000,
  memoryMb: 512,
  subrequests: 1_000,
  scriptBytes: DEFAULT_LIMITS.scriptBytes,
  requestBodyBytes: DEFAULT_LIMITS.requestBodyBytes,
  startupMs: 2_000,
});

/** `cpuMs` as uploads and flags spell it: `cpu_ms` (metadata), `--max-cpu-ms` (cinder serve). */
export const snakeName = (key: string) => key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
export const flagName = (key: string) => `--max-${key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;

/** The operator's ceilings over the defaults; a TypeError naming the flag for a bad one. */
export function resolveCeilings(overrides: Partial<Limits> = {}): LimitCeilings {
  const ceilings: Record<string, number> = { ...DEFAULT_CEILINGS };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_CEILINGS)) throw new TypeError(`unknown limit ceiling "${key}"`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new TypeError(`${flagName(key)} must be a positive number`);
    const hard = HARD_MAXIMUMS[key as keyof Limits];
    if (hard !== undefined && value > hard) throw new TypeError(`${flagName(key)} is ${value}, over the hard maximum of ${hard}`);
    ceilings[key] = value;
  }
  return ceilings as unknown as LimitCeilings;
}

export interface CeilingBreach {
  /** as uploads spell it, e.g. "cpu_ms" */
  limit: string;
  value: number;
  ceiling: number;
}

/** The first limit a tenant asked for over its ceiling, or null. */
export function ceilingBreach(limits: Partial<Limits>, ceilings: LimitCeilings): CeilingBreach | null {
  for (const [key, value] of Object.entries(limits)) {
    const ceiling = ceilings[key as keyof Limits];
    if (typeof value === 'number' && ceiling !== undefined && value > ceiling) return { limit: snakeName(key), value, ceiling };
  }
  return null;
}

/**
 * The limits a version runs with: its own, each cut to its ceiling, plus any default above a
 * ceiling the operator set lower (a worker that names no limit is capped too). `clamped` names
 * what was cut.
 */
export function clampToCeilings(limits: Partial<Limits>, ceilings: LimitCeilings): { limits: Partial<Limits>; clamped: string[] } {
  const out: Partial<Limits> = { ...limits };
  const clamped: string[] = [];
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof Limits)[]) {
    const value = limits[key] ?? DEFAULT_LIMITS[key];
    if (value > ceilings[key]) {
      out[key] = ceilings[key];
      if (limits[key] !== undefined) clamped.push(snakeName(key));
    }
  }
  return { limits: out, clamped };
}
