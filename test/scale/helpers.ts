// Real `cinder serve` nodes as subprocesses on loopback (each its supervisor and serving children),
// a real redis-server that can be stopped and started again on the same port with its data, and a
// steady load that counts what failed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { defaultServingProcesses } from '../../src/app/cli/serving-processes.js';
import { freePort } from '../kv/fixtures.js';
import { multipart } from '../control/helpers.js';

export { multipart };
export const TOKEN = 'scale-test-token-0123456789abcdef';
const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await Promise.resolve().then(check).catch(() => false)) return true;
    await sleep(everyMs);
  }
  return false;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// --- Redis --------------------------------------------------------------------------------------------

export interface RestartableRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

/** redis-server with an append-only file fsynced on every write, so a stop and start keeps the data
 *  (what an operator runs for Cinder: docs/operations.md). */
export async function startRedis(binary: string): Promise<RestartableRedis> {
  const port = await freePort();
  const dir = tempDir('cinder-scale-redis-');
  let child: ChildProcess | null = null;
  const start = async () => {
    const proc = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
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
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}):\n${output}`));
      });
    });
  };
  const stop = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    async cleanup() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- nodes ----------------------------------------------------------------------------------------------

export interface Node {
  proc: ChildProcess;
  url: string;
  adminUrl: string;
  dataDir: string;
  stdout: string;
  stderr: string;
  exit: Promise<number | null>;
}

export interface NodeOptions {
  /** serving processes; 'default' starts the node without `--processes` */
  processes?: number | 'default';
  redis?: string;
  nodeId?: string;
  dataDir?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

/** Start a node and wait until every one of its serving processes is listening. */
export async function startNode(options: NodeOptions = {}): Promise<Node> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const dataDir = options.dataDir ?? tempDir('cinder-scale-node-');
  const processes = options.processes === 'default' ? defaultServingProcesses(availableParallelism()) : options.processes ?? 1;
  const args = [
    '--no-node-snapshot', bin, 'serve', '--port', String(port), '--admin-port', String(adminPort), '--host', '127.0.0.1', '--data', dataDir,
    ...(options.processes === 'default' ? [] : ['--processes', String(processes)]), '--drain-timeout', '10000',
    ...(options.redis ? ['--redis', options.redis] : []),
    ...(options.nodeId ? ['--node-id', options.nodeId] : []),
    ...(options.args ?? []),
  ];
  const proc = spawn(process.execPath, args, { env: { ...process.env, CINDER_ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'info', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const node: Node = {
    proc,
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    dataDir,
    stdout: '',
    stderr: '',
    exit: new Promise((resolve) => proc.once('exit', (code) => resolve(code))),
  };
  proc.stdout!.on('data', (chunk) => (node.stdout += chunk));
  proc.stderr!.on('data', (chunk) => (node.stderr += chunk));
  const listening = () => (node.stderr.match(/cinder serve: data plane on/g) ?? []).length >= processes;
  if (!(await until(async () => listening() && (await admin(node, 'GET', '/readyz')).status === 200, 90_000, 100))) {
    proc.kill('SIGKILL');
    throw new Error(`node did not start:\n${node.stderr}\n${node.stdout.slice(-3000)}`);
  }
  return node;
}

export async function stopNode(node: Node, cleanup = true): Promise<number | null> {
  if (node.proc.exitCode === null && node.proc.signalCode === null) node.proc.kill('SIGTERM');
  const timer = setTimeout(() => node.proc.kill('SIGKILL'), 30_000);
  const code = await node.exit;
  clearTimeout(timer);
  if (cleanup) rmSync(node.dataDir, { recursive: true, force: true });
  return code;
}

/** The serving children's pids, as the supervisor announced them (latest per slot last). */
export const childPids = (node: Node) => [...node.stderr.matchAll(/serving process pid (\d+)/g)].map((m) => Number(m[1]));

/** The serving processes alive now: every pid the supervisor started that has not exited (one
 *  may have been replaced since the node started; `supervisorLines` says why). */
export const aliveChildPids = (node: Node) =>
  childPids(node).filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });

/** What the supervisor said, for an assertion's message. */
/** What the supervisor said: its log lines (stdout) and its pid announcements (stderr). */
export const supervisorLines = (node: Node) =>
  [...node.stdout.split('\n'), ...node.stderr.split('\n')].filter((line) => line.includes('supervisor')).join('\n');

export async function admin(node: Node, method: string, path: string, body?: FormData | string): Promise<{ status: number; text: string; json: () => any }> {
  const res = await fetch(`${node.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, ...(typeof body === 'string' ? { 'content-type': 'application/json' } : {}) }, body });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

/** A new connection per request: under node:cluster each lands on the next serving process. */
const fresh = new Agent({ pipelining: 0, keepAliveTimeout: 1, connections: 1 });

export async function get(node: Node, worker: string, path = '/', keepAlive = true): Promise<{ status: number; text: string }> {
  const res = await request(`${node.url}${path}`, { headers: { host: `${worker}.example`, ...(keepAlive ? {} : { connection: 'close' }) }, headersTimeout: 30_000, dispatcher: keepAlive ? undefined : fresh });
  return { status: res.statusCode, text: await res.body.text() };
}

export async function deploy(node: Node, name: string, code: string, metadata: Record<string, unknown> = {}): Promise<{ status: number; text: string }> {
  return admin(node, 'PUT', `/workers/${name}`, multipart({ main_module: 'index.js', ...metadata }, { 'index.js': code }));
}

export const versionWorker = (tag: string) => `export default { fetch() { return new Response(${JSON.stringify(tag)}); } };`;

// --- load -------------------------------------------------------------------------------------------------

export interface Load {
  ok: number;
  failed: number;
  errors: string[];
  stop(): Promise<void>;
}

/** `concurrency` clients sending requests back to back over keep-alive connections, as a load
 *  balancer's would; a failure is any error or a status other than 200. */
export function steadyLoad(node: Node, worker: string, concurrency: number, expectText?: RegExp): Load {
  let running = true;
  const agent = new Agent({ connections: concurrency, pipelining: 1 });
  const load: Load = {
    ok: 0,
    failed: 0,
    errors: [],
    async stop() {
      running = false;
      await Promise.all(loops);
      await agent.close();
    },
  };
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const res = await request(`${node.url}/`, { headers: { host: `${worker}.example` }, dispatcher: agent, headersTimeout: 30_000 });
        const text = await res.body.text();
        if (res.statusCode === 200 && (!expectText || expectText.test(text))) load.ok++;
        else {
          load.failed++;
          load.errors.push(`${res.statusCode} ${text.slice(0, 200)}`);
        }
      } catch (error) {
        load.failed++;
        load.errors.push(String((error as Error).message ?? error));
      }
    }
  });
  return load;
}

export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
    found = true;
  }
  return found ? total : NaN;
}
