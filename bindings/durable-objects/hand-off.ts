// A Durable Object's WebSocket on its way to a client. The object answers a stub's fetch with a 101
// whose client end stands for a socket the object keeps (a hibernatable one, held by its
// ObjectSockets table, or one it accept()ed, held by its isolate); the calling worker's isolate
// carries that response under an id of its own, holding this stand-in link. When the worker returns
// the response and the ingress completes the handshake, the WebSocket host sees `handOff` and links
// the client to the object's owner and socket instead (bindings/websocket/host.ts upgrade): the
// ownership moves, and the carrying isolate lets go.
import type { SocketLink, SocketOwner } from '../../src/runtime/contract.js';

/** How long the object's socket may wait for its client's handshake. */
export const HAND_OFF_TIMEOUT_MS = 60_000;

/** What the calling worker is told when it uses such a socket itself (proxying is not supported). */
export const HAND_OFF_ONLY = 'This WebSocket belongs to a Durable Object: return it in a 101 response.';

export class HandOff implements SocketLink {
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly handOff: { owner: SocketOwner; socketId: number },
    /** the carrying isolate and its id for the socket, told to let go when it is dropped */
    private readonly holder: SocketOwner,
    private readonly holderId: number,
  ) {
    // Never returned to a client (the worker answered with something else): the object's socket
    // is dropped, and the object sees it closed (1006).
    this.timer = setTimeout(() => {
      if (!this.handOff.owner.link(this.handOff.socketId)) this.terminate();
    }, HAND_OFF_TIMEOUT_MS);
    this.timer.unref();
  }

  async send(): Promise<void> {
    throw new TypeError(HAND_OFF_ONLY);
  }

  close(): void {}

  accept(): void {}

  /** The carrying isolate is going, the handshake failed, or nobody claimed it in time. */
  terminate(): void {
    clearTimeout(this.timer);
    this.handOff.owner.drop(this.handOff.socketId);
    this.release();
  }

  /** Never held by the carrying isolate after all: just stop the clock. */
  cancel(): void {
    clearTimeout(this.timer);
  }

  /** The carrying isolate forgets its stand-in. */
  release(): void {
    clearTimeout(this.timer);
    this.holder.detach(this.holderId);
  }
}
