// The three KV backends as test fixtures, plus a harness that runs Workers KV code in a real
// worker (real server, real isolate) against a KVService on one of them.
//
// Redis: a real redis-server on a free port, started here. It is installed in CI (.ci/run);
// when CI is set a missing binary fails the run, locally the Redis suites skip, loudly.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { installKV, KVService, MemoryBackend, RedisBackend, SqliteBackend, type KVBackend, type KVServiceOptions } from '../../bindings/kv/index.js';
import type { BindingConfig } from '../../src/model/worker-definition.js';

export const inCI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

export function findRedisServer(): string | null {
  const found = spawnSync('/bin/sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = (found.stdout ?? '').trim();
  if (path) return path;
  if (inCI) throw new Error('redis-server is not installed, and CI must run the Redis KV conformance suite (.ci/run installs it)');
  process.stderr.write('\n!!! redis-server not found: SKIPPING the Redis KV conformance suite (apt-get install redis-server) !!!\n\n');
  return null;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  url: string;
  stop(): Promise<void>;
}

export async function startRedis(binary: string): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cinder-redis-'));
  const child: ChildProcess = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk;
      if (/Ready to accept connections/i.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}):\n${output}`));
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A backend handle whose close() leaves the shared storage alone (a second "node"). */
function unclosable(backend: KVBackend): KVBackend {
  return {
    kind: backend.kind,
    get: backend.get.bind(backend),
    getMany: backend.getMany.bind(backend),
    put: backend.put.bind(backend),
    delete: backend.delete.bind(backend),
    list: backend.list.bind(backend),
    purgeExpired: backend.purgeExpired.bind(backend),
    close: async () => {},
  };
}

export interface BackendFixture {
  kind: 'memory' | 'sqlite' | 'redis' | 'redis-cluster';
  /** false when the backend cannot run here (Redis without redis-server, outside CI) */
  available: boolean;
  /** survives closing every handle (SQLite file, Redis server) */
  persistent: boolean;
  setup(): Promise<void>;
  /** a new handle on the fixture's one storage: as another process or node would open it */
  open(): KVBackend;
  teardown(): Promise<void>;
}

export function memoryFixture(): BackendFixture {
  let shared: MemoryBackend;
  return {
    kind: 'memory',
    available: true,
    persistent: false,
    async setup() {
      shared = new MemoryBackend();
    },
    open: () => unclosable(shared),
    async teardown() {
      await shared.close();
    },
  };
}

export function sqliteFixture(): BackendFixture {
  let dir: string;
  const handles: KVBackend[] = [];
  return {
    kind: 'sqlite',
    available: true,
    persistent: true,
    async setup() {
      dir = mkdtempSync(join(tmpdir(), 'cinder-kv-sqlite-'));
    },
    open() {
      const backend = new SqliteBackend({ path: join(dir, 'kv.sqlite') });
      handles.push(backend);
      return backend;
    },
    async teardown() {
      for (const handle of handles) await handle.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function redisFixture(): BackendFixture {
  return redisServerFixture('redis', startRedis);
}

/** The same KV suite on a real three-master Redis Cluster (redis+cluster:// URL). */
export function redisClusterFixture(): BackendFixture {
  return redisServerFixture('redis-cluster', startRedisCluster);
}

/** KV on a Redis the fixture starts (one server or a cluster: whatever `start` makes). */
function redisServerFixture(kind: BackendFixture['kind'], start: (binary: string) => Promise<{ url: string; stop(): Promise<void> }>): BackendFixture {
  const binary = findRedisServer();
  let server: { url: string; stop(): Promise<void> } | null = null;
  const handles: KVBackend[] = [];
  return {
    kind,
    available: binary !== null,
    persistent: true,
    async setup() {
      server = await start(binary!);
    },
    open() {
      const backend = new RedisBackend({ url: server!.url });
      handles.push(backend);
      return backend;
    },
    async teardown() {
      for (const handle of handles) await handle.close();
      await server?.stop();
    },
  };
}

export function allFixtures(): BackendFixture[] {
  return [memoryFixture(), sqliteFixture(), redisFixture(), redisClusterFixture()];
}

export interface RedisCluster {
  /** redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3 */
  url: string;
  ports: number[];
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster of `masters` redis-server processes on free loopback ports, no replicas,
 * made with `redis-cli --cluster create` (redis-cli ships next to redis-server); resolves once the
 * cluster says its state is ok on every node.
 */
export async function startRedisCluster(binary: string, masters = 3): Promise<RedisCluster> {
  const cli = join(dirname(binary), 'redis-cli');
  const servers: ChildProcess[] = [];
  const ports: number[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'cinder-redis-cluster-'));
  const stop = async () => {
    await Promise.all(
      servers.map(async (child) => {
        if (child.exitCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      ports.push(port);
      const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--appendonly', 'no', '--save', '', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      servers.push(child);
      await waitForOutput(child, /Ready to accept connections/i, 'redis-server (cluster node)');
    }
    const created = spawnSync(cli, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${created.stdout}\n${created.stderr}`);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const states = ports.map((p) => spawnSync(cli, ['-p', String(p), 'cluster', 'info'], { encoding: 'utf8' }).stdout ?? '');
      if (states.every((info) => /cluster_state:ok/.test(info))) break;
      if (Date.now() > deadline) throw new Error(`the Redis Cluster did not become ok:\n${states.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, ports, stop };
}

function waitForOutput(child: ChildProcess, ready: RegExp, what: string): Promise<void> {
  let output = '';
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start:\n${output}`)), 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk;
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}):\n${output}`));
    });
  });
}

/** A clock the tests move forward instead of sleeping. Never behind real time, so Redis's own
 *  expiry (real time) can only lag the service's view, never run ahead of it. */
export class TestClock {
  offset = 0;
  now = (): number => Date.now() + this.offset;
  advance(ms: number): void {
    this.offset += ms;
  }
  seconds(): number {
    return Math.floor(this.now() / 1000);
  }
}

export interface GuestError {
  name: string;
  message: string;
}

export class GuestFailure extends Error {
  constructor(readonly guest: GuestError) {
    super(`${guest.name}: ${guest.message}`);
  }
}

let workerCounter = 0;

/** The body of an async function with `KV` (= env.KV), `env` and `ctx` in scope. */
export function kvWorker(body: string): string {
  return `export default {
  async fetch(request, env, ctx) {
    const KV = env.KV;
    try {
      const value = await (async () => { ${body}
      })();
      return new Response(JSON.stringify({ ok: value === undefined ? null : value }));
    } catch (e) {
      return new Response(JSON.stringify({ error: { name: e && e.name, message: e && e.message, isError: e instanceof Error, isTypeError: e instanceof TypeError } }));
    }
  }
};`;
}

export interface KVHarness {
  server: TestServer;
  service: KVService;
  clock: TestClock;
  /** run `body` in a fresh worker whose env.KV is bound to `namespace`; its return value, JSON'd */
  run<T = unknown>(namespace: string, body: string, bindings?: Record<string, BindingConfig>): Promise<T>;
  /** as run, expecting the guest to throw; returns what it threw */
  fails(namespace: string, body: string): Promise<GuestError & { isError: boolean; isTypeError: boolean }>;
  close(): Promise<void>;
}

export type HarnessOptions = Partial<Omit<KVServiceOptions, 'backend' | 'clock'>> & { clock?: TestClock };

export async function startKVHarness(backend: KVBackend, options: HarnessOptions = {}): Promise<KVHarness> {
  const { clock = new TestClock(), ...serviceOptions } = options;
  const service = new KVService({ sweepIntervalMs: 0, ...serviceOptions, clock: clock.now, backend });
  const server = await startTestServer({});
  installKV(server.runtime, service);

  async function invoke(namespace: string, body: string, bindings?: Record<string, BindingConfig>) {
    const name = `kv${++workerCounter}`;
    // Generous CPU: some cases build 25 MiB values or thousands of keys inside the isolate.
    server.deploy(name, { code: kvWorker(body), bindings: bindings ?? { KV: { type: 'kv_namespace', namespace_id: namespace } }, limits: { cpuMs: 10_000 } });
    const response = await server.request(name, '/');
    server.runtime.remove(name);
    if (response.status !== 200) throw new Error(`worker answered ${response.status}: ${response.text}`);
    return JSON.parse(response.text) as { ok?: unknown; error?: GuestError & { isError: boolean; isTypeError: boolean } };
  }

  return {
    server,
    service,
    clock,
    async run<T>(namespace: string, body: string, bindings?: Record<string, BindingConfig>) {
      const out = await invoke(namespace, body, bindings);
      if (out.error) throw new GuestFailure(out.error);
      return out.ok as T;
    },
    async fails(namespace: string, body: string) {
      const out = await invoke(namespace, body);
      if (!out.error) throw new Error(`expected the guest to throw, it returned ${JSON.stringify(out.ok)}`);
      return out.error;
    },
    async close() {
      await server.close();
      await service.close();
    },
  };
}

let namespaceCounter = 0;
export function uniqueNamespace(label = 'ns'): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${++namespaceCounter}`;
}
