// Host half of the ASSETS binding: the `assets.fetch` op answers env.ASSETS.fetch(request) from
// the calling worker's own version's assets (WorkerDefinition.assets), with the rules the data
// plane applies (model/assets.ts) but never the worker: html_handling, not_found_handling, ETag and
// If-None-Match, Range. The file's bytes go back as a host stream the guest reads as it goes, so
// a large asset is never held whole. Not a subrequest (as on Cloudflare, where asset reads are free).
import { routeAssetRequest } from '../../src/model/assets.js';
import type { OpCall, OpRegistry } from '../../src/runtime/contract.js';
import { OPS, type WireResponse } from '../../protocol/wall.js';
import { ASSETS_BINDING_TYPE } from './protocol.js';

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

/** The guest is untrusted: the request's fields are checked before use (the body is ignored: an
 *  asset read never has one). */
function checkRequest(raw: unknown): { method: string; url: URL; headers: [string, string][] } {
  const value = raw as { method?: unknown; url?: unknown; headers?: unknown } | null;
  if (!value || typeof value !== 'object') throw new TypeError('env.ASSETS.fetch(): invalid request');
  if (typeof value.method !== 'string' || !METHOD.test(value.method)) throw new TypeError('env.ASSETS.fetch(): invalid request method');
  let url: URL;
  try {
    url = new URL(String(value.url));
  } catch {
    throw new TypeError('env.ASSETS.fetch(): the request URL must be an absolute URL');
  }
  if (!Array.isArray(value.headers) || !value.headers.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string')) {
    throw new TypeError('env.ASSETS.fetch(): invalid request headers');
  }
  return { method: value.method.toUpperCase(), url, headers: value.headers as [string, string][] };
}

export async function assetsFetch(call: OpCall, args: unknown[]): Promise<WireResponse> {
  const [bindingName, rawRequest] = args;
  const binding = typeof bindingName === 'string' ? call.binding(bindingName) : undefined;
  if (!binding || binding.type !== ASSETS_BINDING_TYPE) throw new TypeError(`env.${String(bindingName)} is not an assets binding`);
  const assets = call.worker.assets;
  const request = checkRequest(rawRequest);
  if (!assets) return { status: 404, statusText: 'Not Found', headers: [], body: null };
  const header = (name: string) => {
    const values = request.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
    return values.length ? values.join(', ') : null;
  };
  const routing = routeAssetRequest(assets, { method: request.method, path: request.url.pathname, search: request.url.search, header }, false);
  if (routing.kind === 'worker') throw new Error('unreachable: an ASSETS binding never routes to the worker');
  // A redirect's Location is absolute here, against the URL the worker asked for.
  const headers = routing.headers.map(([name, value]): [string, string] => (name === 'location' ? [name, new URL(value, request.url).href] : [name, value]));
  const response: WireResponse = { status: routing.status, statusText: '', headers, body: null };
  if (routing.entry && routing.range) response.stream = call.openStream(lazily(() => assets.blobs.read(routing.entry!, routing.range!)));
  return response;
}

/** The file is opened only when the guest first reads the body: a response it never reads holds
 *  no file descriptor. */
async function* lazily(open: () => AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  yield* open();
}

export function registerAssetsBinding(runtime: OpRegistry): void {
  runtime.registerOp(OPS.assetsFetch, assetsFetch);
}
