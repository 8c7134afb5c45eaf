// Shared by the observability tests: waiting for a condition, reading server-sent events over
// real HTTP, and parsing the Prometheus text format.
import { readEventStream } from '../../src/app/cli/observability.js';
import { TOKEN } from '../control/helpers.js';

export async function waitFor<T>(probe: () => T | Promise<T>, { timeout = 10_000, interval = 25, what = 'condition' } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface Tail {
  events: { event: string; data: any }[];
  /** raw text received, heartbeats included */
  raw: string;
  status: number;
  /** resolves once the server said the subscription is live */
  ready: Promise<void>;
  close(): void;
  closed: Promise<void>;
}

/** Open `GET <adminUrl>/workers/<name>/tail` and collect its events. */
export async function openTail(adminUrl: string, worker: string, token = TOKEN): Promise<Tail> {
  const abort = new AbortController();
  const response = await fetch(`${adminUrl}/workers/${worker}/tail`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
  let markReady!: () => void;
  const tail: Tail = {
    events: [],
    raw: '',
    status: response.status,
    ready: new Promise((resolve) => (markReady = resolve)),
    close: () => abort.abort(),
    closed: Promise.resolve(),
  };
  if (!response.ok || !response.body) {
    markReady();
    return tail;
  }
  const body = response.body;
  async function* tee(): AsyncGenerator<Uint8Array> {
    const decoder = new TextDecoder();
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      tail.raw += decoder.decode(chunk, { stream: true });
      yield chunk;
    }
  }
  tail.closed = (async () => {
    try {
      for await (const { event, data } of readEventStream(tee())) {
        tail.events.push({ event, data: JSON.parse(data) });
        if (event === 'ready') markReady();
      }
    } catch {
      // aborted
    }
  })();
  return tail;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parse the Prometheus text exposition format (what /metrics serves). Throws on a bad line. */
export function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string>; help: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let match = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (match) {
      (match[1] === 'HELP' ? help : types).set(match[2], match[3]);
      continue;
    }
    match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (match[2]) {
      const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
      let consumed = 0;
      for (const label of match[2].matchAll(labelPattern)) {
        labels[label[1]] = label[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        consumed += label[0].length;
      }
      if (consumed !== match[2].length) throw new Error(`bad labels in: ${line}`);
    }
    // As Prometheus reads it (Go's ParseFloat): NaN and Inf in any case.
    const raw = match[3].toLowerCase();
    const value = raw === '+inf' || raw === 'inf' ? Infinity : raw === '-inf' ? -Infinity : raw === 'nan' ? NaN : Number(raw);
    if (Number.isNaN(value) && raw !== 'nan') throw new Error(`bad value in: ${line}`);
    samples.push({ name: match[1], labels, value });
  }
  return { samples, types, help };
}

/** The value of one sample (0 when absent): all given labels must match. */
export function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found ? found.value : 0;
}
