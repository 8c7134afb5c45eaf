// Serving a worker's static assets from the data plane, before (or instead of) the worker:
// model/assets.ts decides (run_worker_first, html_handling, not_found_handling, ETag, Range), and
// this writes the answer, streaming the file from the blob source with the socket's backpressure.
// Only workers whose version has assets come here; no isolate is involved.
import type http from 'node:http';
import { routeAssetRequest, type WorkerAssets } from '../model/assets.js';
import { drained } from './drained.js';

/** The answer sent, or null when the request is the worker's. */
export interface AssetServed {
  status: number;
  /** the body could not be read to the end (the response was cut short) */
  error?: Error;
}

export async function serveAssets(
  assets: WorkerAssets,
  hasWorker: boolean,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  target: { path: string; pathAndQuery: string },
  extraHeaders: (string | number)[],
): Promise<AssetServed | null> {
  const method = req.method ?? 'GET';
  const queryAt = target.pathAndQuery.indexOf('?');
  const search = queryAt === -1 ? '' : target.pathAndQuery.slice(queryAt);
  const header = (name: string) => {
    const value = req.headers[name];
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
  };
  const routing = routeAssetRequest(assets, { method, path: target.path, search, header }, hasWorker);
  if (routing.kind === 'worker') return null;
  // An asset answer never reads the request body.
  req.resume();
  const headers: (string | number)[] = [];
  for (const [name, value] of routing.headers) headers.push(name, value);
  headers.push(...extraHeaders);
  if (!routing.entry || !routing.range) {
    if (!routing.headers.some(([name]) => name === 'content-length') && routing.status !== 304) headers.push('content-length', 0);
    res.writeHead(routing.status, headers as unknown as string[]);
    res.end();
    return { status: routing.status };
  }
  res.writeHead(routing.status, headers as unknown as string[]);
  const source = assets.blobs.read(routing.entry, routing.range);
  let clientGone = false;
  res.once('close', () => {
    if (!res.writableFinished) clientGone = true;
  });
  try {
    for await (const chunk of source) {
      if (clientGone) break;
      if (!res.write(chunk)) await drained(res);
    }
    res.end();
    return { status: routing.status };
  } catch (error) {
    res.destroy();
    return { status: routing.status, error: error as Error };
  } finally {
    const iterator = source as { destroy?: () => void };
    iterator.destroy?.();
  }
}
