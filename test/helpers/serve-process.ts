// `cinder serve` as a real child process (--no-supervisor, so kill -9 hits the serving process
// itself), on free ports over one --data directory: what the durability tests kill and restart.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  adminPort: number;
  /** what it has written to stdout (its log), with `logs: 'info'`; else empty */
  stdout(): string;
  stderr(): string;
  /** the signal it exited by, once it has */
  exited: Promise<NodeJS.Signals | null>;
}

export interface ServeProcessOptions {
  /** more `cinder serve` options (--colo, --origin, --allow-private-fetch...) */
  args?: string[];
  /** 'info' keeps the server's log (worker console lines, requests) for stdout(); default: warnings only, not kept */
  logs?: 'info' | 'warn';
  /** more environment variables for the server */
  env?: Record<string, string>;
}

/** Start `cinder serve` on `dataDir` with the admin token `token`; resolves once its admin API
 *  answers. The child is added to `children`, for the test's afterAll to kill. */
export async function startServeProcess(dataDir: string, token: string, children: ChildProcess[], options: ServeProcessOptions = {}): Promise<ServeProcess> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const keepLog = options.logs === 'info';
  const child = spawn(process.execPath, ['--no-node-snapshot', bin, 'serve', '--no-supervisor', '--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort), '--data', dataDir, ...(options.args ?? [])], {
    stdio: ['ignore', keepLog ? 'pipe' : 'ignore', 'pipe'],
    env: { ...process.env, CINDER_ADMIN_TOKEN: token, CINDER_LOG_LEVEL: keepLog ? 'info' : 'warn', ...options.env },
  });
  children.push(child);
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout?.on('data', (d) => (stdout += d));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/workers`, { headers: { authorization: `Bearer ${token}` } });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || i > 600) throw new Error(`cinder serve did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, port, adminPort, exited, stdout: () => stdout, stderr: () => stderr };
}
