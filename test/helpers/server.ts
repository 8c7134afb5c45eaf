// A real Cinder data plane on a free port for integration tests: workers given as source code,
// reached by Host `<name>.test` (or the default worker), host logs captured as parsed JSON.
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import pino from 'pino';
import { request as undiciRequest } from 'undici';
import { Runtime, type RuntimeOptions } from '../../src/runtime/runtime.js';
import { createIngress } from '../../src/data-plane/ingress.js';
import { Router } from '../../src/data-plane/router.js';
import { installStandardOps } from '../../src/app/standard-ops.js';
import { installWebSockets } from '../../src/app/websockets.js';
import type { WebSocketBounds, WebSocketHost } from '../../bindings/websocket/host.js';
import { singleScriptWorker, type WorkerDefinition } from '../../src/model/worker-definition.js';
import type { Limits } from '../../src/model/limits.js';
import type { PrivateAllowance } from '../../bindings/fetch/address-policy.js';
import type { AgentOptions } from '../../bindings/fetch/agents.js';

export interface TestWorker {
  code: string;
  limits?: Partial<Limits>;
  bindings?: WorkerDefinition['bindings'];
  compatibilityDate?: string;
  compatibilityFlags?: string[];
  /** the owning account, as `cinder serve` sets it */
  account?: string;
}

export interface TestServer {
  url: string;
  port: number;
  runtime: Runtime;
  router: Router;
  server: http.Server;
  webSockets: WebSocketHost;
  logs: Record<string, unknown>[];
  /** deploy (or redeploy) a worker from source */
  deploy(name: string, worker: string | TestWorker): WorkerDefinition;
  /** request a worker over real HTTP; `worker` sets the Host header to `<worker>.test` */
  request(worker: string, path?: string, init?: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer | Uint8Array }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string; body: Buffer }>;
  close(): Promise<void>;
}

export function captureLogger(): { logger: pino.Logger; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), logs };
}

export async function startTestServer(
  workers: Record<string, string | TestWorker>,
  options: { defaultWorker?: string; serverTiming?: boolean; exposeErrors?: boolean; maxRequestBodyBytes?: number; runtime?: Partial<RuntimeOptions>; allowPrivateFetch?: PrivateAllowance; fetchAgents?: Partial<AgentOptions>; webSocketBounds?: Partial<WebSocketBounds> } = {},
): Promise<TestServer> {
  const { logger, logs } = captureLogger();
  const runtime = await Runtime.create({ logger, pool: { min: 2 }, ...options.runtime });
  const closeOps = installStandardOps(runtime, { allowPrivate: options.allowPrivateFetch ?? false, agents: options.fetchAgents });
  const webSockets = installWebSockets(runtime, { allowPrivate: options.allowPrivateFetch ?? false, bounds: options.webSocketBounds });
  const router = new Router((name) => runtime.has(name));
  router.defaultWorker = options.defaultWorker ?? null;
  const deploy = (name: string, worker: string | TestWorker) => {
    const spec = typeof worker === 'string' ? { code: worker } : worker;
    const def = singleScriptWorker(name, spec.code, { limits: spec.limits, bindings: spec.bindings });
    if (spec.compatibilityDate !== undefined) def.compatibilityDate = spec.compatibilityDate;
    if (spec.compatibilityFlags !== undefined) def.compatibilityFlags = spec.compatibilityFlags;
    if (spec.account) def.account = spec.account;
    runtime.deploy(def);
    return def;
  };
  for (const [name, worker] of Object.entries(workers)) deploy(name, worker);
  const server = createIngress({ runtime, router, logger, serverTiming: options.serverTiming, exposeErrors: options.exposeErrors, maxRequestBodyBytes: options.maxRequestBodyBytes, webSockets });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    runtime,
    router,
    server,
    webSockets,
    logs,
    deploy,
    async request(worker, path = '/', init = {}) {
      const res = await undiciRequest(`${url}${path}`, {
        method: (init.method ?? 'GET') as 'GET',
        headers: { host: `${worker}.test`, ...init.headers },
        body: init.body,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, headers: res.headers, text: body.toString('utf8'), body };
    },
    async close() {
      webSockets.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      runtime.close();
      await closeOps();
    },
  };
}
