// The waiting jobs of one executor process (executor-processes.ts), served fairly across tenants:
// round-robin over accounts, and within an account round-robin over its workers, so a tenant that
// floods a process with jobs delays a neighbour by at most one of its own jobs per turn, not by
// everything it queued. Two levels because both matter: accounts are the unit of trust (one
// account's many workers get one account's share), and on a server without accounts every worker
// is in the default account and still must not wait behind another worker's flood.
//
// Maps keep insertion order: the one served goes to the back of its map (delete + set), an empty
// queue is dropped, so taking the next job is O(1) whatever the number of tenants.

/** Whose job it is: the account and the worker that caused it ('' for the operator's own work). */
export interface Tenant {
  account: string;
  worker: string;
}

export class FairQueue<T> {
  readonly #accounts = new Map<string, Map<string, T[]>>();
  readonly #accountSizes = new Map<string, number>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Jobs waiting for the account, or for one worker of it. */
  waiting(account: string, worker?: string): number {
    if (worker === undefined) return this.#accountSizes.get(account) ?? 0;
    return this.#accounts.get(account)?.get(worker)?.length ?? 0;
  }

  push(tenant: Tenant, item: T): void {
    let workers = this.#accounts.get(tenant.account);
    if (!workers) this.#accounts.set(tenant.account, (workers = new Map()));
    let queue = workers.get(tenant.worker);
    if (!queue) workers.set(tenant.worker, (queue = []));
    queue.push(item);
    this.#accountSizes.set(tenant.account, (this.#accountSizes.get(tenant.account) ?? 0) + 1);
    this.#size++;
  }

  /** The next job in turn: the first waiting worker of the first waiting account, both then moved to the back. */
  shift(): T | undefined {
    return this.take(anyJob);
  }

  /** The first job in turn that `may` run now (earlier ones are passed over, keeping their place),
   *  its worker and account then moved to the back as shift() does; undefined when none may. */
  take(may: (item: T) => boolean): T | undefined {
    for (const [account, workers] of this.#accounts) {
      for (const [worker, queue] of workers) {
        const index = queue.findIndex(may);
        if (index < 0) continue;
        const [item] = queue.splice(index, 1);
        workers.delete(worker);
        if (queue.length > 0) workers.set(worker, queue);
        this.#accounts.delete(account);
        if (workers.size > 0) this.#accounts.set(account, workers);
        this.#taken(account);
        return item;
      }
    }
    return undefined;
  }

  /** Take one job out of its queue (it was abandoned while waiting); false when it was not there. */
  remove(tenant: Tenant, item: T): boolean {
    const workers = this.#accounts.get(tenant.account);
    const queue = workers?.get(tenant.worker);
    const index = queue ? queue.indexOf(item) : -1;
    if (index < 0) return false;
    queue!.splice(index, 1);
    if (queue!.length === 0) workers!.delete(tenant.worker);
    if (workers!.size === 0) this.#accounts.delete(tenant.account);
    this.#taken(tenant.account);
    return true;
  }

  /** Every waiting job, in turn order, leaving the queue empty. */
  drain(): T[] {
    const all: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) all.push(item);
    return all;
  }

  #taken(account: string): void {
    this.#size--;
    const left = this.#accountSizes.get(account)! - 1;
    if (left === 0) this.#accountSizes.delete(account);
    else this.#accountSizes.set(account, left);
  }
}

const anyJob = (): boolean => true;
