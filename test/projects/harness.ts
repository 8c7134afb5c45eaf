// The sweep's machinery: each project under test/fixtures/projects copied to a temp directory as a
// user's checkout (node_modules linked in, placeholders for the fake upstream's address filled),
// a fake upstream (OpenAI, Stripe, Upstash, a Sentry DSN, a passThroughOnException origin) on a
// real port, `cinder dev` in the project folder, and one `cinder serve` that `cinder deploy`s to.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const bin = join(root, 'bin', 'cinder.js');
const fixtures = join(root, 'test', 'fixtures', 'projects');

// --- the fake upstream -------------------------------------------------------------------------

export interface Recorded {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface FakeUpstream {
  url: string;
  requests: Recorded[];
  /** answer the held request(s) to /gate/<name> (now, or as soon as one arrives) with `body` */
  release(name: string, body: string): void;
  close(): Promise<void>;
}

/** One HTTP server answering as the APIs the projects call would (just enough of each). */
export async function startFakeUpstream(): Promise<FakeUpstream> {
  const requests: Recorded[] = [];
  const redis = new Map<string, string>();
  // /gate/<name>: held until the test releases it, so a check can see what a worker streams
  // before its upstream has answered, without guessing at timing
  const gates = new Map<string, { body?: string; held: http.ServerResponse[] }>();
  const gate = (name: string) => gates.get(name) ?? gates.set(name, { held: [] }).get(name)!;
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      requests.push({ method: req.method ?? '', path, headers: req.headers, body });
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (path === '/v1/chat/completions') {
        const model = JSON.parse(body).model;
        return json(200, { id: 'chatcmpl-fake', object: 'chat.completion', created: 1_700_000_000, model, choices: [{ index: 0, message: { role: 'assistant', content: 'hi from the fake OpenAI' }, finish_reason: 'stop' }], usage: { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 } });
      }
      if (path === '/v1/customers') {
        const email = new URLSearchParams(body).get('email');
        return json(200, { id: 'cus_fake123', object: 'customer', email });
      }
      if (path.startsWith('/upstash')) {
        const base64 = req.headers['upstash-encoding'] === 'base64';
        const run = ([command, ...args]: string[]) => {
          const name = String(command).toLowerCase();
          if (name === 'set') return redis.set(args[0], args[1]) && 'OK';
          if (name === 'get') return redis.get(args[0]) ?? null;
          return null;
        };
        const encode = (v: unknown) => (base64 && typeof v === 'string' ? Buffer.from(v).toString('base64') : v);
        const parsed = JSON.parse(body);
        if (path.startsWith('/upstash/pipeline') || path.startsWith('/upstash/multi-exec')) return json(200, parsed.map((c: string[]) => ({ result: encode(run(c)) })));
        return json(200, { result: encode(run(parsed)) });
      }
      if (/^\/api\/\d+\/envelope\//.test(path)) return json(200, {});
      if (path.startsWith('/gate/')) {
        const g = gate(path.slice('/gate/'.length));
        if (g.body === undefined) return void g.held.push(res);
        return void res.end(g.body);
      }
      // anything else: the origin behind a passThroughOnException worker
      res.writeHead(200, { 'content-type': 'text/plain', 'x-served-by': 'origin' });
      res.end(`origin answered ${req.method} ${path}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    release(name, body) {
      const g = gate(name);
      g.body = body;
      for (const res of g.held.splice(0)) res.end(body);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// --- projects on disk --------------------------------------------------------------------------

/** The project folders, by name. */
export function projectNames(): string[] {
  return readdirSync(fixtures).sort();
}

/** Copy the fixture projects into a fresh directory as a user's checkouts: node_modules linked,
 *  __FAKE_ORIGIN__ / __FAKE_DSN__ in their configs replaced by the fake upstream's address. */
export function checkOut(fake: FakeUpstream): string {
  const work = mkdtempSync(join(tmpdir(), 'cinder-sweep-'));
  const host = new URL(fake.url).host;
  for (const name of projectNames()) {
    const dir = join(work, name);
    cpSync(join(fixtures, name), dir, { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    for (const config of ['wrangler.toml', 'wrangler.jsonc']) {
      let text: string;
      try {
        text = readFileSync(join(dir, config), 'utf8');
      } catch {
        continue;
      }
      writeFileSync(join(dir, config), text.replaceAll('__FAKE_ORIGIN__', fake.url).replaceAll('__FAKE_DSN__', `http://publickey@${host}/1`));
    }
  }
  return work;
}

// --- what a check sees --------------------------------------------------------------------------

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** the body's chunks as they arrived */
  chunks: string[];
}

export type LogLine = Record<string, any>;

export interface Streaming {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** read until the body so far matches `until` (or ends); returns the body so far */
  readUntil(until: RegExp): Promise<string>;
}

export interface Target {
  mode: 'dev' | 'deploy';
  fake: FakeUpstream;
  fetch(worker: string, path: string, init?: { method?: string; headers?: Record<string, string>; body?: string }): Promise<Answer>;
  /** a response whose body the check reads as it arrives */
  stream(worker: string, path: string): Promise<Streaming>;
  /** the log lines the server (dev's or serve's stdout) wrote about `worker` so far */
  logs(worker: string): LogLine[];
}

export async function fetchFrom(base: string, worker: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const res = await request(`${base}${path}`, { method: (init.method ?? 'GET') as 'GET', headers: { host: `${worker}.localhost`, ...init.headers }, body: init.body });
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  for await (const chunk of res.body) chunks.push(decoder.decode(chunk, { stream: true }));
  return { status: res.statusCode, headers: res.headers as Answer['headers'], text: chunks.join(''), chunks };
}

export async function streamFrom(base: string, worker: string, path: string): Promise<Streaming> {
  const res = await request(`${base}${path}`, { headers: { host: `${worker}.localhost` } });
  const chunks = res.body[Symbol.asyncIterator]();
  const decoder = new TextDecoder();
  let text = '';
  return {
    status: res.statusCode,
    headers: res.headers as Answer['headers'],
    async readUntil(until) {
      while (!until.test(text)) {
        const next = await chunks.next();
        if (next.done) break;
        text += decoder.decode(next.value, { stream: true });
      }
      return text;
    },
  };
}

export function jsonLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line));
    } catch {
      // a line cut by the read in progress
    }
  }
  return lines;
}

/** Ask `probe` until it passes (something asynchronous is due: a log line, a cron run, an upload);
 *  at most `tries` times, 100 ms apart. Returns the last value. */
export async function eventually<T>(probe: () => T | Promise<T>, ok: (value: T) => boolean, tries = 100): Promise<T> {
  let value = await probe();
  for (let i = 0; i < tries && !ok(value); i++) {
    await new Promise((r) => setTimeout(r, 100));
    value = await probe();
  }
  return value;
}

// --- the CLI as a child process ----------------------------------------------------------------

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run a `cinder` command to its end (asynchronously: dev and serve children keep being read). */
export function cinder(args: string[], options: { cwd: string; env?: Record<string, string>; input?: string; timeoutMs?: number }): Promise<Run> {
  const child = spawn(process.execPath, ['--no-node-snapshot', bin, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  return new Promise((resolve) =>
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    }),
  );
}

export interface LongRunning {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  stop(): Promise<void>;
}

/** Start a long-running `cinder` command; resolves when stderr matches `ready` (or rejects with
 *  what it said when it exits first). */
export function startCinder(args: string[], options: { cwd: string; env?: Record<string, string>; ready: RegExp; timeoutMs?: number }): Promise<LongRunning & { match: RegExpExecArray }> {
  const child = spawn(process.execPath, ['--no-node-snapshot', bin, ...args], { cwd: options.cwd, env: { ...process.env, NO_COLOR: '', ...options.env } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => (out += c));
  const handle: LongRunning = {
    child,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void handle.stop();
      reject(new Error(`cinder ${args[0]} did not start:\n${err}`));
    }, options.timeoutMs ?? 45_000);
    child.stderr!.on('data', (c) => {
      err += c;
      const match = options.ready.exec(err);
      if (match) {
        clearTimeout(timer);
        resolve({ ...handle, match });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`cinder ${args[0]} exited (${code}):\n${err}`), { stderr: err, stdout: out }));
    });
  });
}

/** A gate that lets at most `n` of the calls through at once (the rest wait their turn). */
export function limit(n: number): <T>(run: () => Promise<T>) => Promise<T> {
  let free = n;
  const waiting: (() => void)[] = [];
  return async (run) => {
    if (free === 0) await new Promise<void>((resolve) => waiting.push(resolve));
    else free--;
    try {
      return await run();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}
