// The gateway: tags every request with its own header, asks the `hello` worker for the answer
// through the HELLO service binding, and says how long that took.
import { forwarded } from './forward';

interface Fetcher {
  fetch(input: Request | string, init?: RequestInit): Promise<Response>;
}

export interface Env {
  HELLO: Fetcher;
  SERVICE_NAME: string;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const started = Date.now();
    const upstream = await env.HELLO.fetch(forwarded(request, env.SERVICE_NAME));
    const headers = new Headers(upstream.headers);
    headers.set('x-served-by', env.SERVICE_NAME);
    headers.set('x-upstream-ms', String(Date.now() - started));
    return new Response(upstream.body, { status: upstream.status, headers });
  },
};
