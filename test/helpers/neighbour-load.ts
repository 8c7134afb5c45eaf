import type { TestServer } from './server.js';

/** A neighbour worker requested in a steady loop (one request every ~5 ms) while a test file's
 *  attacks run: counts its requests and the ones that failed (anything but a 200 with `body`). */
export class NeighbourLoad {
  requests = 0;
  failures = 0;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(server: TestServer, worker = 'neighbour', body = 'neighbour ok') {
    this.loop = (async () => {
      while (!this.stopped) {
        this.requests++;
        const res = await server.request(worker).catch(() => null);
        if (res?.status !== 200 || res.text !== body) this.failures++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
  }

  /** Ends the loop once its request in flight is answered. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
