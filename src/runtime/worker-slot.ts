// The live isolates of one deployed version of a worker. Usually one; more when the ones there
// are saturated (several requests in flight and the isolate's thread busy most of the time), up
// to a cap, so that a CPU-heavy worker spreads over isolated-vm's threads.
import type { WorkerDefinition } from '../model/worker-definition.js';
import type { WorkerInstance } from './worker-instance.js';

/** An isolate counts as saturated above this share of its time on CPU... */
const SATURATED_UTILIZATION = 0.7;
/** ...with at least this many requests waiting on it. */
const SATURATED_IN_FLIGHT = 2;

export class WorkerSlot {
  readonly instances: WorkerInstance[] = [];
  /** set when this version failed to load: every request reports it until a redeploy */
  loadError: string | null = null;
  /** ...and whether that load went over a limit (startup time, memory): answered 503 */
  loadOverLimit = false;
  /** a cold start under way (on isolated-vm's threads): requests finding no live isolate wait for it */
  starting: Promise<{ instance?: WorkerInstance; loadError?: string; overLimit?: boolean; coldMs: number | null }> | null = null;
  /** set once the slot was retired (evicted, redeployed): an instance that finishes loading after
   *  that serves the requests that waited for it, then is retired too */
  private retiredAs: string | null = null;

  constructor(readonly def: WorkerDefinition) {}

  add(instance: WorkerInstance): void {
    if (this.retiredAs !== null) {
      const reason = this.retiredAs;
      // After the requests waiting for it have begun (they continue in microtasks).
      setImmediate(() => instance.retire(reason));
      return;
    }
    this.instances.push(instance);
  }

  remove(instance: WorkerInstance): void {
    const index = this.instances.indexOf(instance);
    if (index >= 0) this.instances.splice(index, 1);
  }

  /** The live instance with the least work in flight. */
  pick(): WorkerInstance | null {
    let best: WorkerInstance | null = null;
    for (const instance of this.instances) {
      if (!instance.accepting) continue;
      if (!best || instance.inFlight.size < best.inFlight.size) best = instance;
    }
    return best;
  }

  /** True when every live instance is saturated: time to add one (if under the cap). */
  saturated(): boolean {
    let live = 0;
    for (const instance of this.instances) {
      if (!instance.alive) continue;
      live++;
      if (instance.inFlight.size < SATURATED_IN_FLIGHT || instance.utilization < SATURATED_UTILIZATION) return false;
    }
    return live > 0;
  }

  /** WebSockets open in this version's live isolates */
  openSockets(): number {
    let open = 0;
    for (const instance of this.instances) if (instance.alive) open += instance.openSockets;
    return open;
  }

  get liveCount(): number {
    let live = 0;
    for (const instance of this.instances) if (instance.alive) live++;
    return live;
  }

  /** Dispose every instance once its in-flight work is done. */
  retire(reason: string): void {
    this.retiredAs = reason;
    for (const instance of this.instances.splice(0)) instance.retire(reason);
  }
}
