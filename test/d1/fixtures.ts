// A real data plane with D1 on SQLite files in a temp directory, and workers that run a body of
// D1 code and answer {ok: result} or {error: {name, message, cause}} as JSON.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { D1Service, installD1, type D1ServiceOptions } from '../../bindings/d1/index.js';
import type { BindingConfig } from '../../src/model/worker-definition.js';

export const d1Binding = (database_id: string, account?: string): BindingConfig => ({ type: 'd1', database_id, ...(account ? { account } : {}) });

/** A module worker running `body` (async, with env) and answering its result as JSON. */
export function d1Worker(body: string): string {
  return `export default {
    async fetch(request, env) {
      try {
        const ok = await (async () => { ${body} })();
        return Response.json({ ok });
      } catch (e) {
        return Response.json({ error: { name: e.name, message: e.message, cause: e.cause ? e.cause.message : null } });
      }
    },
  };`;
}

export interface D1Harness {
  server: TestServer;
  service: D1Service;
  dataDir: string;
  /** deploy `body` as worker `name` bound to `bindings` (default DB -> database "main") and run it once */
  run(body: string, bindings?: Record<string, BindingConfig>, name?: string): Promise<{ ok?: any; error?: { name: string; message: string; cause: string | null } }>;
  close(): Promise<void>;
}

export async function startD1Harness(options: Partial<D1ServiceOptions> = {}): Promise<D1Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cinder-d1-'));
  const server = await startTestServer({});
  const service = new D1Service({ dataDir, ...options });
  installD1(server.runtime, service);
  let n = 0;
  return {
    server,
    service,
    dataDir,
    async run(body, bindings = { DB: d1Binding('main') }, name = `w${n++}`) {
      server.deploy(name, { code: d1Worker(body), bindings });
      const response = await server.request(name, '/');
      expect(response.status, response.text).toBe(200);
      return JSON.parse(response.text);
    },
    async close() {
      await server.close();
      service.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
