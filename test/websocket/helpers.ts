// Real `ws` clients against a Cinder test server: every message and close event is recorded, so
// tests assert what a client saw.
import { WebSocket } from 'ws';

export interface Client {
  ws: WebSocket;
  messages: (string | Buffer)[];
  /** the handshake response's headers */
  headers: Record<string, string | string[] | undefined>;
  closed: Promise<{ code: number; reason: string }>;
  /** resolves once `n` messages have arrived in all */
  received(n: number): Promise<(string | Buffer)[]>;
  send(data: string | Buffer): void;
}

export function connect(port: number, worker: string, path = '/', options: { headers?: Record<string, string>; protocols?: string[] } = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, options.protocols ?? [], { headers: { host: `${worker}.test`, ...options.headers }, perMessageDeflate: false });
    const messages: (string | Buffer)[] = [];
    const waiting: { n: number; resolve: (m: (string | Buffer)[]) => void }[] = [];
    ws.on('message', (data, isBinary) => {
      messages.push(isBinary ? Buffer.from(data as Buffer) : data.toString());
      for (const w of waiting.splice(0)) {
        if (messages.length >= w.n) w.resolve(messages.slice());
        else waiting.push(w);
      }
    });
    let headers: Record<string, string | string[] | undefined> = {};
    ws.once('upgrade', (res) => (headers = res.headers));
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        headers,
        closed,
        received: (n) => (messages.length >= n ? Promise.resolve(messages.slice()) : new Promise((r) => waiting.push({ n, resolve: r }))),
        send: (data) => ws.send(data),
      }),
    );
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => reject(Object.assign(new Error(`unexpected response ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
}

/** Poll `check` until it holds (the event loop turns between tries); fails after `timeoutMs`, a
 *  deadline far past what it takes here, so that only a thing that never happens fails (a loaded
 *  CI machine takes several times longer). */
export async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
