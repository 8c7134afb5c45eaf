// A lean HTTP/1.1 client for latency measurement: one raw TCP socket, kept alive, a minimal
// request written by hand, the response parsed just enough to know where it ends
// (Content-Length or chunked). Node's http client adds ~0.5 ms per request on this machine;
// this adds a few tens of microseconds, so what it reports is the server's latency plus loopback.
import net from 'node:net';

export class LeanClient {
  /** @param {{host?: string, port: number}} target */
  constructor(target) {
    this.host = target.host ?? '127.0.0.1';
    this.port = target.port;
    this.socket = null;
    this.pending = null;
    this.buffer = Buffer.alloc(0);
  }

  connect() {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
      socket.once('connect', () => {
        this.socket = socket;
        resolve();
      });
      socket.once('error', reject);
      socket.on('data', (chunk) => this.onData(chunk));
      socket.on('error', (error) => this.fail(error));
      socket.on('close', () => {
        this.socket = null;
        this.fail(new Error('connection closed by server'));
      });
    });
  }

  fail(error) {
    const pending = this.pending;
    this.pending = null;
    this.buffer = Buffer.alloc(0);
    pending?.reject(error);
  }

  /**
   * GET `path` with the given Host header. Resolves to {status, headers, body, ms}, where ms is
   * the time from writing the request to having the whole response.
   */
  async get(path, hostHeader = 'localhost', { timeoutMs = 30_000 } = {}) {
    if (!this.socket) await this.connect();
    if (this.pending) throw new Error('LeanClient: one request at a time');
    const raw = `GET ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\n\r\n`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket?.destroy();
        this.fail(new Error(`no response to GET ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      const started = process.hrtime.bigint();
      this.pending = {
        resolve: (response) => {
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          clearTimeout(timer);
          resolve({ ...response, ms });
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.socket.write(raw);
    });
  }

  onData(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    if (!this.pending) return;
    const parsed = parseResponse(this.buffer);
    if (!parsed) return;
    this.buffer = this.buffer.subarray(parsed.consumed);
    const pending = this.pending;
    this.pending = null;
    pending.resolve(parsed.response);
  }

  close() {
    this.socket?.destroy();
    this.socket = null;
  }
}

/** One complete HTTP/1.1 response at the start of `buf`, or null if more bytes are needed. */
export function parseResponse(buf) {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd === -1) return null;
  const head = buf.toString('latin1', 0, headEnd);
  const lines = head.split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':');
    if (colon > 0) headers[lines[i].slice(0, colon).toLowerCase()] = lines[i].slice(colon + 1).trim();
  }
  const bodyStart = headEnd + 4;
  if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
    const parts = [];
    let at = bodyStart;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at);
      if (lineEnd === -1) return null;
      const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
      if (Number.isNaN(size)) throw new Error('bad chunked encoding');
      const dataStart = lineEnd + 2;
      if (buf.length < dataStart + size + 2) return null;
      if (size === 0) {
        // no trailers expected: "0\r\n\r\n"
        return { consumed: dataStart + 2, response: { status, headers, body: Buffer.concat(parts).toString() } };
      }
      parts.push(buf.subarray(dataStart, dataStart + size));
      at = dataStart + size + 2;
    }
  }
  const length = headers['content-length'] !== undefined ? Number(headers['content-length']) : 0;
  if (buf.length < bodyStart + length) return null;
  return { consumed: bodyStart + length, response: { status, headers, body: buf.toString('utf8', bodyStart, bodyStart + length) } };
}

/** Parse `Server-Timing: cold;dur=0.4, cpu;dur=0.1, total;dur=0.6` into {cold, cpu, total}. */
export function parseServerTiming(value) {
  const out = {};
  if (!value) return out;
  for (const part of value.split(',')) {
    const [name, ...params] = part.trim().split(';');
    for (const p of params) {
      const [k, v] = p.trim().split('=');
      if (k === 'dur') out[name.trim()] = Number(v);
    }
  }
  return out;
}
