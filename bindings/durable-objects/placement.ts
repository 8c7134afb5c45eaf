// Where a Durable Object lives when several serving processes (and nodes) share the platform
// (`--redis`): each object has one owning process at a time, and the others forward its events
// there. The host half asks an ObjectPlacement (src/app/object-placement.ts implements it on
// Redis); without one, every object lives in this process, as before.
import type { ObjectEventPayload, ObjectEventResult } from './protocol.js';
import type { SocketOwner } from '../../src/runtime/contract.js';

/** This process holds the object: `check()` throws PlacementLostError once it no longer may serve
 *  or write it (its lease lapsed), so a stale owner refuses instead of splitting the object. */
export interface Fence {
  /** the holder's identity: a new one after a lapse, so objects held before are not reused */
  readonly holder: string;
  /** the object's fencing token (raised each time another holder takes it over) */
  readonly token: number;
  check(): void;
  /** until when (performance.now() ms) the lease holds as last renewed: a storage call waiting
   *  or running past it is refused or ended (src/store/executor-processes.ts) */
  validUntil(): number;
}

export interface RemoteHolder {
  /** the holding process (node/pid/epoch) */
  holder: string;
  node: string;
  address: string;
}

export type Whereabouts = { here: Fence } | { remote: RemoteHolder } | { unavailable: string };

/** An event sent to the object's holder on another process or node. */
export interface ForwardedEvent {
  account: string;
  script: string;
  className: string;
  dir: string;
  id: string;
  name: string | null;
  event: ObjectEventPayload['event'];
  /** the caller's chain depth, and what is left of its request's budgets */
  depth: number;
  subrequestsLeft: number;
  /** invocations the request may still start (the holder's tree starts from both) */
  invocationsLeft: number;
  trigger: { method: string; url: string };
}

/** The outcome of one event, as the caller's stub reports it. */
export interface DeliveryOutcome {
  result?: ObjectEventResult;
  error?: { name: string; message: string };
  failure?: string;
  /** what a forwarded event spent of its request's budgets in the holder: charged to the caller's */
  spent?: { subrequests: number; invocations: number };
}

/** A WebSocket the holder's object answered a forwarded upgrade with, open between this process
 *  and the holder's (which joined it to the object's socket): given to the calling guest. */
export interface RelayedSocket {
  /** hand it to the calling isolate under its reserved id (false: it could not take it; closed) */
  attach(owner: SocketOwner, socketId: number): boolean;
  /** not given to anyone after all: close it (the object sees its socket closed) */
  close(): void;
}

/** The outcome of an upgrade forwarded to the holder: with the relayed socket when the object
 *  answered with a WebSocket. */
export type SocketDeliveryOutcome = DeliveryOutcome & { socket?: RelayedSocket };

/** Answer of a holder that does not hold the object (it moved): the caller locates it again. */
export const NOT_HELD = 'not-held';

export interface ObjectPlacement {
  /** where the object (`<namespace dir>/<id>`) lives; claims it for this process when nobody does */
  locate(objectKey: string, className: string): Promise<Whereabouts>;
  /** deliver an event at the holder; resolves to NOT_HELD when the holder no longer holds it */
  /** `stream`: the object's streamed response body, read from the holder as the caller pulls it */
  forward(to: RemoteHolder, event: ForwardedEvent): Promise<(DeliveryOutcome & { stream?: AsyncGenerator<Uint8Array, void, undefined> }) | typeof NOT_HELD>;
  /** deliver a fetch with `Upgrade: websocket` at the holder over a WebSocket of its own, which
   *  carries the object's WebSocket if it answers with one; absent: such fetches are forwarded as
   *  any other, and an object answering with a WebSocket is refused */
  forwardSocket?(to: RemoteHolder, event: ForwardedEvent): Promise<SocketDeliveryOutcome | typeof NOT_HELD>;
  /** drop what is cached about the object's whereabouts (a forward failed) */
  forget(objectKey: string): void;
}

export class PlacementLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Error';
  }
}
