// One outbound connection pool per worker: a tenant that saturates an origin's connections queues
// behind its own requests only, never a neighbour's. Each pool is bounded and is closed once its
// worker has made no outbound request for a while.
import { Agent, type Dispatcher } from 'undici';
import type { LookupFunction } from 'node:net';

export interface AgentOptions {
  /** connections one worker may hold open to one origin */
  connectionsPerOrigin: number;
  /** a worker's pool is closed after this long without an outbound request in flight */
  idleMs: number;
}

export const DEFAULT_AGENT_OPTIONS: AgentOptions = { connectionsPerOrigin: 16, idleMs: 30_000 };

interface Pool {
  agent: Agent;
  inUse: number;
  idle: NodeJS.Timeout | null;
}

export class WorkerAgents {
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly lookup: LookupFunction,
    private readonly options: AgentOptions = DEFAULT_AGENT_OPTIONS,
  ) {}

  /** The worker's dispatcher for one request; call the returned release() when its body is done. */
  acquire(worker: string): { dispatcher: Dispatcher; release: () => void } {
    let pool = this.pools.get(worker);
    if (!pool) {
      pool = { agent: new Agent({ connections: this.options.connectionsPerOrigin, connect: { lookup: this.lookup } }), inUse: 0, idle: null };
      this.pools.set(worker, pool);
    }
    if (pool.idle) clearTimeout(pool.idle);
    pool.idle = null;
    pool.inUse++;
    const held = pool;
    let released = false;
    return {
      dispatcher: pool.agent,
      release: () => {
        if (released) return;
        released = true;
        if (--held.inUse > 0) return;
        held.idle = setTimeout(() => {
          if (held.inUse > 0 || this.pools.get(worker) !== held) return;
          this.pools.delete(worker);
          void held.agent.close();
        }, this.options.idleMs);
        held.idle.unref();
      },
    };
  }

  /** Workers with an open pool (tests and stats). */
  get size(): number {
    return this.pools.size;
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    for (const pool of pools) if (pool.idle) clearTimeout(pool.idle);
    await Promise.all(pools.map((pool) => pool.agent.destroy()));
  }
}
