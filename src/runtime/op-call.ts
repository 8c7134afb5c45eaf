// What an op handler gets for one guest call (contract.ts OpCall): the calling worker, its limits
// and invocation, and access to its bindings, streams and per-isolate op state. One object per
// host op with its methods on the prototype: op-heavy workers (KV, fetch, crypto) make thousands
// of calls, and a literal with five closures per call was measurable on the serving thread.
import type { Limits } from '../model/limits.js';
import type { BindingConfig, WorkerDefinition } from '../model/worker-definition.js';
import type { OpCall, SocketOwner } from './contract.js';
import type { Invocation } from './invocation.js';

/** What an OpCall reaches in the worker instance that made it. */
export interface OpCallOwner {
  readonly def: WorkerDefinition;
  readonly limits: Limits;
  openStream(invocation: Invocation | undefined, source: AsyncIterable<Uint8Array | string>): number;
  guestStream(id: number): AsyncIterable<Uint8Array>;
  takeHostStream(id: number): AsyncIterable<Uint8Array>;
  isolateState<T>(family: string, create: () => T): T;
  /** the WebSockets whose guest ends live in the isolate */
  readonly socketOwner: SocketOwner;
  /** end the isolate over a limit (every invocation in it fails with it) */
  breach(limit: 'cpu', culprit?: Invocation): void;
}

export class InstanceOpCall implements OpCall {
  constructor(
    private readonly owner: OpCallOwner,
    readonly invocation: Invocation | undefined,
  ) {}

  get worker(): WorkerDefinition {
    return this.owner.def;
  }

  get limits(): Limits {
    return this.owner.limits;
  }

  binding(name: string): BindingConfig | undefined {
    const bindings = this.owner.def.bindings;
    return Object.hasOwn(bindings, name) ? bindings[name] : undefined;
  }

  openStream(source: AsyncIterable<Uint8Array | string>): number {
    return this.owner.openStream(this.invocation, source);
  }

  guestStream(id: number): AsyncIterable<Uint8Array> {
    return this.owner.guestStream(Number(id));
  }

  takeHostStream(id: number): AsyncIterable<Uint8Array> {
    return this.owner.takeHostStream(Number(id));
  }

  isolateState<T>(family: string, create: () => T): T {
    return this.owner.isolateState(family, create);
  }

  get sockets(): SocketOwner {
    return this.owner.socketOwner;
  }

  exceeded(limit: 'cpu'): void {
    // The invocation ends now; the isolate goes on the next turn, once the op's answer has
    // released the guest thread waiting for it.
    this.invocation?.abort(limit);
    setImmediate(() => this.owner.breach(limit, this.invocation));
  }
}
