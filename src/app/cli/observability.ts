// Observability commands of the `cinder` CLI, against the admin API of `cinder serve`:
//   cinder usage <name> [--from T] [--to T]      metered usage as a table (or --json)
//   cinder tail <name> [--format pretty|json]     live invocations, console lines and exceptions
//   cinder log-level <name> [level]               show or set a worker's log level
// --url/--token default to CINDER_URL/CINDER_TOKEN (or the server's CINDER_ADMIN_TOKEN).
import type { UsageSummary } from '../../observability/usage.js';
import { Command, Option } from 'commander';
import { AdminClient, AdminError, DEFAULT_ADMIN_URL } from './client.js';

export interface ObservabilityIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

interface AdminFlags {
  url: string;
  token?: string;
}

function adminOptions(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'admin API of `cinder serve`').env('CINDER_URL').default(DEFAULT_ADMIN_URL))
    .addOption(new Option('--token <token>', 'admin token').env('CINDER_TOKEN'));
}

const tokenOf = (flags: AdminFlags) => flags.token ?? process.env.CINDER_ADMIN_TOKEN;

// --- formatting -----------------------------------------------------------------------------------

const number = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

const utc = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('   ').trimEnd()).join('\n');
}

/** The admin API's usage answer (older servers may omit the later fields). */
type Usage = Pick<UsageSummary, 'worker' | 'from' | 'to' | 'requests' | 'errors' | 'cpu_ms' | 'wall_ms' | 'gb_s'> & Partial<UsageSummary>;

export function formatUsage(u: Usage): string {
  const lines = [`${u.worker}: usage from ${utc(u.from)} to ${utc(u.to)}`, ''];
  const errorShare = u.requests ? ` (${((u.errors / u.requests) * 100).toFixed(1)}%)` : '';
  lines.push(
    table([
      ['', 'SUM', 'P50', 'P99'],
      ['requests', number(u.requests), '', ''],
      ['errors', number(u.errors) + errorShare, '', ''],
      ['cpu ms', number(u.cpu_ms.sum, 3), number(u.cpu_ms.p50, 3), number(u.cpu_ms.p99, 3)],
      ['wall ms', number(u.wall_ms.sum, 3), number(u.wall_ms.p50, 3), number(u.wall_ms.p99, 3)],
      ['GB-s', u.gb_s.toPrecision(4), '', ''],
    ]),
  );
  const outcomes = Object.entries(u.outcomes ?? {}).map(([k, v]) => `${k} ${number(v)}`);
  if (outcomes.length) lines.push('', `outcomes:    ${outcomes.join(', ')}`);
  if (u.scheduled) lines.push(`cron runs:   ${number(u.scheduled)}`);
  if (u.subrequests !== undefined) lines.push(`subrequests: ${number(u.subrequests)}`);
  if (u.bytes_in !== undefined) lines.push(`bytes:       ${bytes(u.bytes_in)} in, ${bytes(u.bytes_out ?? 0)} out`);
  return lines.join('\n');
}

/** One tail event as a line (or a few) for people. */
export function formatTailEvent(event: Record<string, any>): string {
  const time = new Date(event.timestamp ?? Date.now()).toISOString();
  const req = event.requestId ? ` [${event.requestId}]` : '';
  switch (event.type) {
    case 'invocation': {
      const what = event.kind === 'scheduled' ? `cron "${event.cron}"` : `${event.request?.method ?? ''} ${event.request?.url ?? ''}${event.request?.status !== undefined ? ` ${event.request.status}` : ''}`;
      return `${time}  ${what}  ${event.outcome}  cpu ${Number(event.cpu_ms).toFixed(2)} ms, wall ${Number(event.wall_ms).toFixed(2)} ms${req}`;
    }
    case 'log': {
      const [first, ...rest] = String(event.message).split('\n');
      return [`${time}  (${event.level}) ${first}${req}`, ...rest.map((l) => `    ${l}`)].join('\n');
    }
    case 'exception':
      return `${time}  exception${req}\n${String(event.stack || `${event.name}: ${event.message}`)
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n')}`;
    case 'dropped':
      return `${time}  (tail) ${event.count} events dropped: the connection did not keep up`;
    default:
      return `${time}  ${JSON.stringify(event)}`;
  }
}

/** Server-sent events from a byte stream: yields {event, data} per message. */
export async function* readEventStream(body: AsyncIterable<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = 'message';
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.search(/\r?\n/)) !== -1) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer[newline] === '\r' ? 2 : 1));
      if (line === '') {
        if (data.length) yield { event, data: data.join('\n') };
        event = 'message';
        data = [];
      } else if (line.startsWith(':')) {
        // comment (heartbeat)
      } else {
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    }
  }
}

// --- commands -------------------------------------------------------------------------------------

export function registerObservabilityCommands(program: Command, io: ObservabilityIO = { stdout: process.stdout, stderr: process.stderr }): void {
  const say = (line: string) => io.stdout.write(line + '\n');

  program.addCommand(
    adminOptions(
      new Command('usage')
        .description('show a worker\'s metered usage: requests, errors, CPU and wall time (sum, p50, p99), GB-seconds')
        .argument('<name>', 'worker name')
        .option('--from <time>', 'start: ISO 8601, ms since the epoch, or an age such as 1h, 7d', '24h')
        .option('--to <time>', 'end (default: now)')
        .option('--json', 'print the API\'s JSON'),
    ).action(async (name: string, opts: AdminFlags & { from: string; to?: string; json?: boolean }) => {
      const query = new URLSearchParams({ from: opts.from });
      if (opts.to) query.set('to', opts.to);
      const usage = await new AdminClient(opts.url, tokenOf(opts)).request<Usage>('GET', `/workers/${encodeURIComponent(name)}/usage?${query}`);
      say(opts.json ? JSON.stringify(usage, null, 2) : formatUsage(usage));
    }),
  );

  program.addCommand(
    adminOptions(
      new Command('tail')
        .description('stream a worker\'s invocations, console output and exceptions as they happen')
        .argument('<name>', 'worker name')
        .addOption(new Option('--format <format>', 'pretty lines, or one JSON event per line').choices(['pretty', 'json']).default('pretty')),
    ).action(async (name: string, opts: AdminFlags & { format: 'pretty' | 'json' }) => {
      const client = new AdminClient(opts.url, tokenOf(opts));
      const token = tokenOf(opts);
      if (!token) await client.request('GET', '/'); // throws the client's "no token" explanation
      const abort = new AbortController();
      const stop = () => abort.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      let response: Response;
      try {
        response = await fetch(`${client.url}/workers/${encodeURIComponent(name)}/tail`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: abort.signal });
      } catch (error) {
        if (abort.signal.aborted) return;
        throw new AdminError(`cannot reach the Cinder admin API at ${client.url} (${(error as { cause?: Error }).cause?.message ?? (error as Error).message}). Is \`cinder serve\` running? Point --url (or CINDER_URL) at its admin port.`);
      }
      if (!response.ok) {
        const text = await response.text();
        let message = `${response.status} ${response.statusText}`;
        try {
          message = JSON.parse(text).error ?? message;
        } catch {
          // not JSON
        }
        throw new AdminError(response.status === 401 || response.status === 403 ? `the admin API at ${client.url} refused the token (${message}): check --token / CINDER_TOKEN` : message, response.status);
      }
      try {
        for await (const { event, data } of readEventStream(response.body as unknown as AsyncIterable<Uint8Array>)) {
          if (event === 'ready') {
            io.stderr.write(`Tailing ${name}; Ctrl-C to stop.\n`);
            continue;
          }
          if (opts.format === 'json') say(data);
          else say(formatTailEvent(JSON.parse(data)));
        }
        io.stderr.write('The server closed the tail.\n');
      } catch (error) {
        if (!abort.signal.aborted) throw error;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    }),
  );

  program.addCommand(
    adminOptions(
      new Command('log-level')
        .description('show or set the level of a worker\'s console lines in the server log (debug, info, warn, error, silent; "default" for the server\'s)')
        .argument('<name>', 'worker name')
        .argument('[level]', 'new level'),
    ).action(async (name: string, level: string | undefined, opts: AdminFlags) => {
      const client = new AdminClient(opts.url, tokenOf(opts));
      const path = `/workers/${encodeURIComponent(name)}/log-level`;
      const result =
        level === undefined
          ? await client.request('GET', path)
          : await client.request('PUT', path, JSON.stringify({ level: level === 'default' ? null : level }), { 'content-type': 'application/json' });
      say(`${name}: ${result.level}${result.default ? ' (the server\'s level)' : ''}`);
    }),
  );
}
