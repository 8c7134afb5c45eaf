// A real `cinder serve` (data plane + admin API, each on a free port, SQLite store in a temp
// directory) started in-process, with its host log captured, and small clients for both ports.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as undiciRequest } from 'undici';
import { captureLogger } from '../helpers/server.js';
import { startServe, type CinderServer, type ServeOptions } from '../../src/app/serve.js';

export const TOKEN = 'test-admin-token-0123456789abcdef';

export interface TestCinder {
  server: CinderServer;
  dataDir: string;
  logs: Record<string, unknown>[];
  /** admin API call with the right token unless `headers.authorization` says otherwise */
  admin(method: string, path: string, init?: { body?: BodyInit; json?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; text: string; headers: Headers }>;
  /** data plane request with the given Host header */
  get(host: string, path?: string, init?: { method?: string; body?: string }): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }>;
  /** stop the server; the data directory stays (for restart tests) unless `cleanup` */
  close(options?: { cleanup?: boolean }): Promise<void>;
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'cinder-control-'));
}

export async function startCinder(options: Partial<ServeOptions> & { dataDir?: string } = {}): Promise<TestCinder> {
  const { logger, logs } = captureLogger();
  const dataDir = options.dataDir ?? tempDataDir();
  const server = await startServe({ logger, port: 0, adminPort: 0, host: '127.0.0.1', adminHost: '127.0.0.1', token: TOKEN, runtime: { pool: { min: 2 } }, ...options, dataDir });
  return {
    server,
    dataDir,
    logs,
    async admin(method, path, init = {}) {
      const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}`, ...init.headers };
      let body = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        headers['content-type'] = 'application/json';
      }
      const res = await fetch(`${server.adminUrl}${path}`, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = undefined;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: callers look at text
      }
      return { status: res.status, body: parsed as any, text, headers: res.headers };
    },
    async get(host, path = '/', init = {}) {
      const res = await undiciRequest(`${server.url}${path}`, { method: (init.method ?? 'GET') as 'GET', headers: { host }, body: init.body });
      const text = await res.body.text();
      return { status: res.statusCode, text, headers: res.headers as Record<string, string | string[] | undefined> };
    },
    async close({ cleanup = false } = {}) {
      await server.close();
      if (cleanup) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A multipart upload body in the shape of Cloudflare's script upload API. */
export function multipart(metadata: unknown, modules: Record<string, string | { code: string; type: string }>): FormData {
  const form = new FormData();
  form.append('metadata', new Blob([typeof metadata === 'string' ? metadata : JSON.stringify(metadata)], { type: 'application/json' }), 'metadata.json');
  for (const [name, module] of Object.entries(modules)) {
    const { code, type } = typeof module === 'string' ? { code: module, type: 'application/javascript+module' } : module;
    form.append(name, new Blob([code], { type }), name);
  }
  return form;
}

/** A module worker answering `text`. */
export const textWorker = (text: string) => `export default { fetch() { return new Response(${JSON.stringify(text)}); } };`;
