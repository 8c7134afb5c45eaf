// Which workers' isolates run in the background class of isolated-vm's threads (patch 14:
// threads niced CINDER_BACKGROUND_THREAD_NICE below the other isolate threads). A worker that
// has breached its CPU limit is moved there: its next isolates (a breach recycles the one it
// had) and any it still has run below every other tenant's, so a tenant spinning to its limit
// request after request, or stuck in a builtin past it, takes the cores from its neighbours only
// when they leave them idle. It comes back once it has been calm (no breach) for `calmMs`.
// The neighbours stay in the normal class throughout.
import { backgroundThreadNice } from './thread-priority.js';

export interface BackgroundClassOptions {
  /** false: nobody is moved (the class is off: CINDER_BACKGROUND_THREAD_NICE=0) */
  enabled: boolean;
  /** how long a worker stays in the background class after its last breach (ms) */
  calmMs: number;
}

/** After its last breach a worker stays in the background class this long: an attacker whose
 *  every request breaches never leaves, a worker that breached once by accident soon does. */
export const DEFAULT_CALM_MS = 10_000;

/** From the environment: off when the class is (CINDER_BACKGROUND_THREAD_NICE=0), and
 *  CINDER_BACKGROUND_CALM_MS for how long a worker stays. */
export function backgroundClassOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): BackgroundClassOptions {
  const calm = Number(env.CINDER_BACKGROUND_CALM_MS ?? DEFAULT_CALM_MS);
  return {
    enabled: backgroundThreadNice() > 0,
    calmMs: Number.isFinite(calm) && calm >= 0 ? calm : DEFAULT_CALM_MS,
  };
}

export class BackgroundClass {
  /** worker -> when it may leave the background class (ms, performance.now()) */
  private readonly until = new Map<string, number>();
  /** worker -> times it was moved to the background class */
  private readonly moves = new Map<string, number>();

  constructor(
    readonly options: BackgroundClassOptions = backgroundClassOptionsFromEnv(),
    /** the clock (ms), for tests */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** `worker` breached its CPU limit: in the background class from now until calm. True when
   *  this moved it there (it was not there already). */
  breached(worker: string): boolean {
    if (!this.options.enabled) return false;
    const moved = !this.has(worker);
    this.until.set(worker, this.now() + this.options.calmMs);
    if (moved) this.moves.set(worker, (this.moves.get(worker) ?? 0) + 1);
    return moved;
  }

  /** Whether `worker`'s isolates run in the background class now. */
  has(worker: string): boolean {
    const until = this.until.get(worker);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.until.delete(worker);
    return false;
  }

  /** Workers in the background class now. */
  count(): number {
    let n = 0;
    for (const worker of [...this.until.keys()]) if (this.has(worker)) n++;
    return n;
  }

  /** Moves to the background class so far, per worker. */
  counts(): { worker: string; moves: number }[] {
    return [...this.moves].map(([worker, moves]) => ({ worker, moves }));
  }

  /** The worker was removed. */
  forget(worker: string): void {
    this.until.delete(worker);
    this.moves.delete(worker);
  }
}
