// A worker whose default export is a WorkerEntrypoint class, using what cloudflare:workers gives:
// compared between Cinder and workerd (test/differential/examples.test.ts).
import { env, waitUntil, WorkerEntrypoint, DurableObject, RpcTarget } from 'cloudflare:workers';

const seenAtTopLevel = typeof env;
let waited = 0;

export default class Probe extends WorkerEntrypoint {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/shape') {
      return Response.json({
        seenAtTopLevel,
        envKeys: Object.keys(this.env),
        envKeysAgain: Object.keys(env),
        ctx: [typeof this.ctx.waitUntil, typeof this.ctx.passThroughOnException],
        isEntrypoint: this instanceof WorkerEntrypoint,
        classes: [typeof WorkerEntrypoint, typeof DurableObject, typeof RpcTarget],
        ownKeys: Object.keys(this).sort(),
      });
    }
    if (url.pathname === '/wait') {
      waitUntil(Promise.resolve().then(() => waited++));
      this.ctx.waitUntil(Promise.resolve().then(() => waited++));
      return new Response(`method ${request.method}`);
    }
    return new Response('not found', { status: 404 });
  }
}
