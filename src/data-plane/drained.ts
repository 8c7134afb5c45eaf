// Waiting for a response socket to take more: what both HTTP servers (the data plane's ingress and
// the admin API's node adapter) do between chunks, so a client that does not read holds the
// writer, not the host's memory.
import type http from 'node:http';

/** Resolves when `res` drains, or closes (a gone client must not keep the writer waiting). */
export function drained(res: http.ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
