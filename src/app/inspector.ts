// `cinder dev --inspect[=[host:]port]`: Chrome DevTools (chrome://inspect, or any client of the
// inspector protocol) attached to a worker's isolate through isolated-vm's V8 inspector.
//
//   GET /json/version, /json/list (/json)   what chrome://inspect asks to discover targets: one
//                                           target per worker, id = worker name
//   ws://host:port/<worker>                 the DevTools protocol, relayed to an inspector session
//                                           on the worker's live isolate (brought up if needed)
//
// The relay adds what isolated-vm's inspector lacks for DevTools: the worker's context is named
// after it and marked as the default one (so the console evaluates there without a context id),
// the isolate's unused default context is hidden, and the worker's console lines, which Cinder routes to the host log rather
// than to V8's console, are shown in the DevTools console as Runtime.consoleAPICalled.
//
// When the isolate goes away (file change reload, a limit breach) the socket is closed with the
// reason; DevTools offers to reconnect, which attaches to the new isolate.
//
// Never part of `cinder serve`: isolated-vm's inspector is not safe with untrusted code, and the
// protocol can run anything in the isolate. Listens on 127.0.0.1 unless told otherwise, and refuses
// requests whose Host is not an IP address or localhost (DNS rebinding), as Node's --inspect does.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Runtime } from '../runtime/runtime.js';
import type { LogLevel } from '../../protocol/wall.js';

export interface InspectorOptions {
  runtime: Runtime;
  logger: Logger;
  /** default 9229; 0 picks a free port */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
}

interface Session {
  worker: string;
  ws: WebSocket;
  contextId: number | null;
  runtimeEnabled: boolean;
}

const CONSOLE_TYPES: Record<LogLevel, string> = { log: 'log', info: 'info', debug: 'debug', warn: 'warning', error: 'error' };
// Methods that run in "the" context when given none: they get the worker's.
const CONTEXT_METHODS = new Set(['Runtime.evaluate', 'Runtime.compileScript', 'Runtime.globalLexicalScopeNames']);
const ISOLATED_VM_CONTEXT = '<isolated-vm>';
// ids of the relay's own messages to the backend (clients number theirs from 1)
const PROBE_ENABLE = -1;
const PROBE_DISABLE = -2;

/** Parse `--inspect` / `--inspect=9230` / `--inspect=0.0.0.0:9230`. */
export function parseInspectOption(value: string | boolean | undefined): { host: string; port: number } | null {
  if (value === undefined || value === false) return null;
  if (value === true || value === '') return { host: '127.0.0.1', port: 9229 };
  const match = /^(?:(.+):)?(\d+)$/.exec(String(value));
  if (!match) throw new Error(`--inspect takes [host:]port, e.g. --inspect=9229 (got "${value}")`);
  const port = Number(match[2]);
  if (port > 65535) throw new Error(`--inspect: ${port} is not a port`);
  return { host: (match[1] ?? '127.0.0.1').replace(/^\[(.*)\]$/, '$1'), port };
}

function hostAllowed(header: string | undefined): boolean {
  if (!header) return false;
  const hostname = header.startsWith('[') ? header.slice(1, header.indexOf(']')) : header.replace(/:\d+$/, '');
  return hostname === 'localhost' || isIP(hostname) !== 0;
}

export class InspectorServer {
  readonly server: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sessions = new Set<Session>();
  private readonly runtime: Runtime;
  private readonly logger: Logger;
  port = 0;

  private constructor(options: InspectorOptions) {
    this.runtime = options.runtime;
    this.logger = options.logger;
    this.server = http.createServer((req, res) => this.http(req, res));
    this.server.on('upgrade', (req, socket, head) => {
      const worker = decodeURIComponent((req.url ?? '/').split('?')[0].replace(/^\/(ws\/)?/, ''));
      const refuse = (status: string) => {
        socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      };
      if (!hostAllowed(req.headers.host)) return refuse('403 Forbidden');
      if (!this.runtime.has(worker)) return refuse('404 Not Found');
      this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, worker));
    });
    this.runtime.onConsole((worker, _requestId, level, message) => this.console(worker, level, message));
  }

  static async start(options: InspectorOptions): Promise<InspectorServer> {
    const inspector = new InspectorServer(options);
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      inspector.server.once('error', reject);
      inspector.server.listen(options.port ?? 9229, host, () => {
        inspector.server.off('error', reject);
        resolve();
      });
    });
    inspector.port = (inspector.server.address() as AddressInfo).port;
    return inspector;
  }

  /** host:port as a client would write it */
  get address(): string {
    const { address, port } = this.server.address() as AddressInfo;
    const host = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address;
    return `${host}:${port}`;
  }

  /** The DevTools URL for one worker. */
  devtoolsUrl(worker: string, address = this.address): string {
    return `devtools://devtools/bundled/js_app.html?experiments=true&v8only=true&ws=${address}/${encodeURIComponent(worker)}`;
  }

  private http(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (!hostAllowed(req.headers.host)) {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end('Host header is not an IP address or localhost\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
    const json = (body: unknown) => {
      const text = JSON.stringify(body, null, 2);
      res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (path === '/json/version') {
      return json({ Browser: 'Cinder/0.1.0', 'Protocol-Version': '1.3', 'V8-Version': process.versions.v8 });
    }
    if (path === '/json' || path === '/json/list') {
      const address = req.headers.host ?? this.address;
      return json(
        this.runtime.workers().map((worker) => {
          const def = this.runtime.definition(worker);
          return {
            description: `cinder worker ${worker}`,
            devtoolsFrontendUrl: this.devtoolsUrl(worker, address),
            devtoolsFrontendUrlCompat: `devtools://devtools/bundled/inspector.html?experiments=true&v8only=true&ws=${address}/${encodeURIComponent(worker)}`,
            id: worker,
            title: `cinder: ${worker}`,
            type: 'node',
            url: `file:///${def?.main ?? ''}`,
            webSocketDebuggerUrl: `ws://${address}/${encodeURIComponent(worker)}`,
          };
        }),
      );
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('Not found: try /json/list\n');
  }

  private attach(ws: WebSocket, worker: string): void {
    // Bring the worker's isolate up if it is not live (on isolated-vm's threads); the inspector
    // attaches to it. What the client sends meanwhile is kept and relayed once attached.
    const early: string[] = [];
    const hold = (data: unknown) => early.push(String(data));
    ws.on('message', hold);
    void this.runtime.prewarm(worker).then(() => {
      ws.off('message', hold);
      this.attachNow(ws, worker, early);
    });
  }

  private attachNow(ws: WebSocket, worker: string, early: string[]): void {
    const instance = this.runtime.instancesOf(worker)[0];
    if (!instance) {
      ws.close(1011, `worker ${worker} failed to load; see the dev server log`);
      return;
    }
    let inspector: ReturnType<typeof instance.isolate.createInspectorSession>;
    try {
      inspector = instance.isolate.createInspectorSession();
    } catch (error) {
      ws.close(1011, `no inspector on this isolate: ${(error as Error).message}`.slice(0, 120));
      return;
    }
    const session: Session = { worker, ws, contextId: null, runtimeEnabled: false };
    this.sessions.add(session);
    this.logger.info({ worker, inspector: true }, `inspector attached to ${worker}`);

    let closed = false;
    const close = (code?: number, reason?: string) => {
      if (closed) return;
      closed = true;
      this.sessions.delete(session);
      try {
        inspector.dispose();
      } catch {
        // the isolate is gone already
      }
      if (code !== undefined && ws.readyState === ws.OPEN) ws.close(code, reason);
      this.logger.info({ worker, inspector: true }, `inspector detached from ${worker}`);
    };
    const send = (message: string) => {
      if (ws.readyState === ws.OPEN) ws.send(message);
    };

    // First learn the worker's context with a private Runtime.enable/disable (so that a client
    // that evaluates without enabling Runtime still lands there); the client's own messages wait.
    let probing = true;
    const queued: string[] = [];
    inspector.onResponse = (callId, message) => {
      if (callId === PROBE_DISABLE) {
        probing = false;
        for (const text of queued.splice(0)) relay(text);
      }
      if (callId < 0) return;
      send(message);
    };
    inspector.onNotification = (message) => {
      if (message.includes('"Runtime.executionContextCreated"')) {
        const note = JSON.parse(message) as { params: { context: { id: number; name: string; auxData?: Record<string, unknown> } } };
        const context = note.params.context;
        // isolated-vm names the contexts it creates "<isolated-vm>": that is the worker's. The other
        // ("default") is the isolate's own, unused context: not shown.
        if (context.name !== ISOLATED_VM_CONTEXT) return;
        session.contextId = context.id;
        if (probing) return;
        context.name = worker;
        context.auxData = { ...context.auxData, isDefault: true };
        return send(JSON.stringify(note));
      }
      if (!probing) send(message);
    };

    const relay = (text: string) => {
      let message: { id?: number; method?: string; params?: Record<string, unknown> };
      try {
        message = JSON.parse(text);
      } catch {
        return;
      }
      if (typeof message.id !== 'number' || message.id < 0) return; // negative ids are the relay's own
      if (message.method === 'Runtime.enable') session.runtimeEnabled = true;
      if (message.method === 'Runtime.disable') session.runtimeEnabled = false;
      if (message.method && CONTEXT_METHODS.has(message.method) && session.contextId !== null) {
        const params = (message.params ??= {});
        if (params.contextId === undefined && params.executionContextId === undefined && params.uniqueContextId === undefined) {
          if (message.method === 'Runtime.globalLexicalScopeNames') params.executionContextId = session.contextId;
          else params.contextId = session.contextId;
        }
      }
      try {
        inspector.dispatchProtocolMessage(JSON.stringify(message));
      } catch {
        close(1011, 'the isolate is gone');
      }
    };

    queued.push(...early);
    ws.on('message', (data) => {
      if (probing) queued.push(String(data));
      else relay(String(data));
    });
    ws.on('close', () => close());
    ws.on('error', () => close());
    // The isolate can go away under the session (a reload, a limit breach, shutdown). isolated-vm
    // cannot dispose an isolate with a session open, and ends a session on the isolate's thread: so
    // close the session, then let the isolate go once that has run there (or after 250 ms).
    instance.ready.onBeforeDispose(() => {
      close(1001, `the isolate of ${worker} was replaced (reload or limit); reconnect to attach to the new one`);
      return Promise.race([instance.ready.context.eval('0').then(() => {}, () => {}), new Promise<void>((resolve) => setTimeout(resolve, 250).unref())]);
    });
    inspector.dispatchProtocolMessage(JSON.stringify({ id: PROBE_ENABLE, method: 'Runtime.enable' }));
    inspector.dispatchProtocolMessage(JSON.stringify({ id: PROBE_DISABLE, method: 'Runtime.disable' }));
  }

  private console(worker: string, level: LogLevel, message: string): void {
    for (const session of this.sessions) {
      if (session.worker !== worker || !session.runtimeEnabled || session.contextId === null) continue;
      session.ws.send(
        JSON.stringify({
          method: 'Runtime.consoleAPICalled',
          params: { type: CONSOLE_TYPES[level] ?? 'log', args: [{ type: 'string', value: message }], executionContextId: session.contextId, timestamp: Date.now() },
        }),
      );
    }
  }

  async close(): Promise<void> {
    for (const session of [...this.sessions]) session.ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
