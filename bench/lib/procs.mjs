// Starting and stopping the servers under test, each in its own process so that the client's
// work never shares an event loop with the server's.
import { fork, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { sleep } from './stats.mjs';

export const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const rootDir = join(benchDir, '..');
const require = createRequire(import.meta.url);

/** A free TCP port on loopback (bound and released; good enough for a bench). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * The Node flags and environment `cinder serve` gives a serving process (src/app/serving-flags.ts:
 * the serving heap's shape, put back for isolates), so an embedded runtime in bench/servers/cinder.mjs
 * runs as a serving process does. BENCH_SERVING_FLAGS=0 leaves them out (an A/B).
 */
async function servingProcessFlags(execArgv) {
  if (process.env.BENCH_SERVING_FLAGS === '0') return { execArgv, env: {} };
  const { servingExecArgv, servingEnv } = await import(join(rootDir, 'dist', 'src', 'app', 'serving-flags.js'));
  return { execArgv: servingExecArgv(execArgv, ''), env: servingEnv(execArgv, '') };
}

/**
 * A Node server script from bench/servers/, forked with --no-node-snapshot and an IPC channel.
 * The script sends {type: 'ready', port} once it listens; `call(msg)` sends a control message
 * and resolves with the script's reply (messages carry an id).
 */
export async function startNodeServer(script, options = {}, { timeoutMs = 60_000, execArgv = [] } = {}) {
  const serving = script === 'cinder.mjs' ? await servingProcessFlags(execArgv) : { execArgv, env: {} };
  const child = fork(join(benchDir, 'servers', script), [JSON.stringify(options)], {
    execArgv: ['--no-node-snapshot', ...serving.execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...serving.env, CINDER_LOG_LEVEL: process.env.CINDER_LOG_LEVEL ?? 'warn' },
  });
  let nextId = 1;
  const waiting = new Map();
  let readyResolve, readyReject;
  const ready = new Promise((resolve, reject) => {
    readyResolve = resolve;
    readyReject = reject;
  });
  child.on('message', (msg) => {
    if (msg?.type === 'ready') readyResolve(msg);
    else if (msg?.type === 'reply' && waiting.has(msg.id)) {
      const { resolve, reject } = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (msg.error) reject(new Error(msg.error));
      else resolve(msg.value);
    }
  });
  child.once('exit', (code, signal) => {
    readyReject(new Error(`${script} exited early (code ${code}, signal ${signal})`));
    for (const { reject } of waiting.values()) reject(new Error(`${script} exited (code ${code}, signal ${signal})`));
    waiting.clear();
  });
  const timer = setTimeout(() => readyReject(new Error(`${script} did not become ready in ${timeoutMs} ms`)), timeoutMs);
  let info;
  try {
    info = await ready;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return {
    pid: child.pid,
    port: info.port,
    info,
    call(message) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        child.send({ ...message, id });
      });
    },
    rssMb: () => rssMb(child.pid),
    stop: () => stopChild(child),
  };
}

async function waitForPort(port, timeoutMs, child) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`process exited with code ${child.exitCode}`);
    const ok = await new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export function workerdBinary() {
  // The npm package ships the binary in a platform package; its main export is the path.
  try {
    const mod = require('workerd');
    const path = typeof mod === 'string' ? mod : mod.default;
    if (path) return path;
  } catch {
    // fall through to the bin shim
  }
  return join(rootDir, 'node_modules', '.bin', 'workerd');
}

export function workerdVersion() {
  try {
    return JSON.parse(readFileSync(join(rootDir, 'node_modules', 'workerd', 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

/**
 * `cinder serve` as its users run it: the real CLI (bin/cinder.js) in its own process, default
 * logging (the JSON access log to stdout, read here from a pipe as a log collector would), data in
 * a fresh directory, and `workers` ({name: file}) deployed through the admin API like `cinder
 * deploy` does. Resolves once every worker answers.
 */
/** `root`: the Cinder tree to run (default this one; an A/B runs another build side by side). */
export async function startCinderServe(workers, { timeoutMs = 60_000, execArgv = [], env = {}, args = [], keepLogLines = null, root = rootDir } = {}) {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dataDir = mkdtempSync(join(tmpdir(), 'cinder-bench-'));
  const [port, adminPort] = [await freePort(), await freePort()];
  const token = 'bench-admin-token';
  let logBytes = 0;
  let stderr = '';
  // Log lines matching keepLogLines (a RegExp), kept whole for the bench to read.
  const kept = [];
  let partial = '';
  let child;
  const launch = async () => {
    child = spawn(process.execPath, ['--no-node-snapshot', ...execArgv, join(root, 'bin', 'cinder.js'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort), '--data', dataDir, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: userEnv({ CINDER_ADMIN_TOKEN: token, ...env }),
    });
    child.stdout.on('data', (d) => {
      logBytes += d.length;
      if (!keepLogLines) return;
      const lines = (partial + d).split('\n');
      partial = lines.pop();
      for (const line of lines) if (keepLogLines.test(line)) kept.push(line);
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
    });
    await waitForPort(adminPort, timeoutMs, child);
    await waitForPort(port, timeoutMs, child);
  };
  const stop = async () => {
    await stopChild(child);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await launch();
    for (const [name, file] of Object.entries(workers)) {
      const res = await fetch(`http://127.0.0.1:${adminPort}/workers/${name}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/javascript' },
        body: readFileSync(file, 'utf8'),
      });
      if (!res.ok) throw new Error(`deploy ${name}: ${res.status} ${await res.text()}`);
    }
  } catch (error) {
    await stop();
    throw new Error(`cinder serve failed to start: ${error.message}\n${stderr}`);
  }
  return {
    get pid() {
      return child.pid;
    },
    port,
    adminPort,
    token,
    logBytes: () => logBytes,
    keptLogLines: () => kept,
    stderr: () => stderr,
    // the supervisor and its serving child together
    rssMb: () => treeRssMb(child.pid),
    /** Stop the server and start it again on the same data and ports: deployments kept, nothing live. */
    restart: async () => {
      await stopChild(child);
      await launch();
    },
    stop,
  };
}

/** This process's environment without Cinder's settings (a bench may have set a log level for its
 *  in-process servers), plus `extra`. */
function userEnv(extra) {
  const env = { ...process.env, ...extra };
  for (const key of Object.keys(env)) if (key.startsWith('CINDER_') && !(key in extra)) delete env[key];
  return env;
}

/** workerd serving one of bench/workerd/*.capnp in its own process; `sockets` maps the config's
 *  socket names to ports chosen here. Plain: no experimental flag unless `experimental`. */
export async function startWorkerdConfig(config, sockets, { timeoutMs = 30_000, experimental = false } = {}) {
  const args = ['serve', ...(experimental ? ['--experimental'] : []), join(benchDir, 'workerd', config)];
  for (const [name, port] of Object.entries(sockets)) args.push('--socket-addr', `${name}=127.0.0.1:${port}`);
  const child = spawn(workerdBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: join(benchDir, 'workerd') });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  try {
    for (const port of Object.values(sockets)) await waitForPort(port, timeoutMs, child);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`workerd failed to start: ${error.message}\n${stderr}`);
  }
  return {
    pid: child.pid,
    stderr: () => stderr,
    rssMb: () => rssMb(child.pid),
    stop: () => stopChild(child),
  };
}

/**
 * workerd serving bench/workerd/config.capnp; `sockets` maps socket names in the config to
 * ports chosen here. Resolves once every socket accepts connections.
 */
export function startWorkerd(sockets, { timeoutMs = 30_000 } = {}) {
  return startWorkerdConfig('config.capnp', sockets, { timeoutMs, experimental: true });
}

/** CPU time (utime + stime) of a process and all its descendants, in ms, from /proc. */
export function treeCpuMs(pid) {
  let total = 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    total += ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks at 100 Hz
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean)) total += treeCpuMs(Number(child));
    }
  } catch {
    // the process ended
  }
  return total;
}

/** RSS of a process and all its descendants, in MB. */
export function treeRssMb(pid) {
  let total = rssMb(pid);
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean)) total += treeRssMb(Number(child));
    }
  } catch {
    // the process ended
  }
  return total;
}

export function rssMb(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return kb / 1024;
  } catch {
    return NaN;
  }
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Everything a reader needs to know about where the numbers came from. */
export async function environment() {
  const os = await import('node:os');
  let sandbox = null;
  try {
    sandbox = JSON.parse(readFileSync(join(rootDir, 'dist', 'sandbox.manifest.json'), 'utf8'));
  } catch {
    // reported as null
  }
  let gitRev = null;
  try {
    const head = readFileSync(join(rootDir, '.git', 'HEAD'), 'utf8').trim();
    gitRev = head.startsWith('ref: ') ? readFileSync(join(rootDir, '.git', head.slice(5)), 'utf8').trim() : head;
  } catch {
    // not a git checkout
  }
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    isolatedVm: JSON.parse(readFileSync(join(rootDir, 'node_modules', 'isolated-vm', 'package.json'), 'utf8')).version,
    workerd: workerdVersion(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGb: Math.round(os.totalmem() / 2 ** 30),
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    git: gitRev,
    sandboxBytes: sandbox?.bytes ?? null,
    sandboxGlobals: sandbox?.globals?.length ?? null,
  };
}
