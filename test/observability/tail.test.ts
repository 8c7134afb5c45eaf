// Live tail over server-sent events (real HTTP on the admin port): console lines, invocation
// summaries and exceptions with their stack from requests made after subscribing, nothing from
// another worker, heartbeats, subscribers cleaned up on disconnect, `cinder tail` printing it;
// and per-worker log levels in the host log.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { TOKEN, multipart, startCinder, tempDataDir, type TestCinder } from '../control/helpers.js';
import { formatTailEvent } from '../../src/app/cli/observability.js';
import { openTail, parseMetrics, sample, sleep, waitFor } from './helpers.js';

const WORKER = (name: string) => `export default {
  async fetch(request) {
    const path = new URL(request.url).pathname;
    console.log('${name} saw ' + path);
    console.debug('${name} debug detail');
    console.warn('${name} warning');
    if (path === '/throw') throw new RangeError('${name} failed on purpose');
    return new Response('${name}');
  },
  async scheduled(controller) { console.log('${name} cron ' + controller.cron) },
};`;

describe('live tail', () => {
  let cinder: TestCinder;
  const dataDir = tempDataDir();

  const deploy = async (name: string) => {
    const res = await cinder.admin('PUT', `/workers/${name}`, { body: multipart({ main_module: 'index.js' }, { 'index.js': WORKER(name) }) });
    expect(res.status, res.text).toBe(201);
  };

  beforeAll(async () => {
    cinder = await startCinder({ dataDir, observability: { tailHeartbeatMs: 150, defaultMetrics: false } });
    await deploy('alpha');
    await deploy('beta');
  });
  afterAll(async () => {
    await cinder?.close({ cleanup: true });
  });

  const subscribers = async () => sample(parseMetrics((await cinder.admin('GET', '/metrics')).text).samples, 'cinder_tail_subscribers');

  it('streams console lines and the invocation summary of a request made after subscribing, and nothing from another worker', async () => {
    // A request before subscribing is not replayed.
    await cinder.get('alpha.example.com', '/before');
    const tail = await openTail(cinder.server.adminUrl, 'alpha');
    expect(tail.status).toBe(200);
    await tail.ready;
    expect(await subscribers()).toBe(1);
    await cinder.get('beta.example.com', '/other');
    expect((await cinder.get('alpha.example.com', '/after')).text).toBe('alpha');
    const summary = await waitFor(() => tail.events.find((e) => e.event === 'invocation'), { what: 'the invocation summary' });
    tail.close();
    await tail.closed;

    const logs = tail.events.filter((e) => e.event === 'log').map((e) => e.data);
    expect(logs.map((l) => [l.level, l.message])).toEqual([
      ['log', 'alpha saw /after'],
      ['debug', 'alpha debug detail'],
      ['warn', 'alpha warning'],
    ]);
    expect(logs.every((l) => l.worker === 'alpha' && l.requestId === summary.data.requestId)).toBe(true);
    expect(summary.data).toMatchObject({
      type: 'invocation',
      worker: 'alpha',
      kind: 'fetch',
      outcome: 'ok',
      request: { method: 'GET', url: 'http://alpha.example.com/after', status: 200 },
      bytes_out: 5,
    });
    expect(summary.data.cpu_ms).toBeGreaterThan(0);
    expect(summary.data.wall_ms).toBeGreaterThanOrEqual(summary.data.cpu_ms * 0.9);
    // Nothing of beta, nothing from before.
    expect(tail.raw).not.toContain('beta');
    expect(tail.raw).not.toContain('/before');
    expect(tail.events[0].event).toBe('ready');
  });

  it('streams exceptions with their stack, and cron runs', async () => {
    const tail = await openTail(cinder.server.adminUrl, 'beta');
    onTestFinished(() => tail.close());
    await tail.ready;
    expect((await cinder.get('beta.example.com', '/throw')).status).toBe(500);
    const exception = await waitFor(() => tail.events.find((e) => e.event === 'exception'), { what: 'the exception' });
    expect(exception.data).toMatchObject({ worker: 'beta', name: 'RangeError', message: 'beta failed on purpose' });
    expect(exception.data.stack).toMatch(/^RangeError: beta failed on purpose\n\s+at .*index\.js/);
    const summary = await waitFor(() => tail.events.find((e) => e.event === 'invocation'), { what: 'the summary' });
    expect(summary.data).toMatchObject({ outcome: 'exception', requestId: exception.data.requestId, request: { method: 'GET', url: 'http://beta.example.com/throw' } });
    expect(summary.data.request.status).toBeUndefined(); // the handler threw: no response
    // The order a reader sees: logs, then the exception, then the summary.
    const order = tail.events.filter((e) => e.data.requestId === exception.data.requestId).map((e) => e.event);
    expect(order).toEqual(['log', 'log', 'log', 'exception', 'invocation']);
    expect(formatTailEvent(exception.data)).toMatch(/exception \[[0-9a-f]+\]\n    RangeError: beta failed on purpose\n    \s*at /);

    // A cron run shows up like a request, with its cron.
    await cinder.server.runtime.scheduled('beta', '*/5 * * * *');
    const cron = await waitFor(() => tail.events.find((e) => e.event === 'invocation' && e.data.kind === 'scheduled'), { what: 'the cron run' });
    expect(cron.data).toMatchObject({ cron: '*/5 * * * *', outcome: 'ok', scheduled_time: expect.any(Number) });
    expect(formatTailEvent(cron.data)).toMatch(/cron "\*\/5 \* \* \* \*"  ok  cpu /);
    tail.close();
  });

  it('sends heartbeats, and forgets a subscriber that disconnects', async () => {
    const tail = await openTail(cinder.server.adminUrl, 'alpha');
    await tail.ready;
    await waitFor(() => tail.raw.includes(': heartbeat '), { what: 'a heartbeat' });
    expect(await subscribers()).toBe(1);
    tail.close();
    await tail.closed;
    await waitFor(async () => (await subscribers()) === 0, { what: 'the subscriber to go' });
    // Requests after the disconnect still work.
    expect((await cinder.get('alpha.example.com')).status).toBe(200);
  });

  it('404s for an unknown worker and needs the token', async () => {
    expect((await openTail(cinder.server.adminUrl, 'nobody')).status).toBe(404);
    expect((await openTail(cinder.server.adminUrl, 'alpha', 'not-the-token-xxxxxxxx')).status).toBe(403);
  });

  it('`cinder tail` prints events readably', async () => {
    const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
    const child = spawn(process.execPath, [bin, 'tail', 'alpha'], { env: { ...process.env, CINDER_URL: cinder.server.adminUrl, CINDER_TOKEN: TOKEN } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    try {
      await waitFor(() => stderr.includes('Tailing alpha'), { what: `the tail to start (stderr: ${stderr})`, timeout: 15_000 });
      await cinder.get('alpha.example.com', '/cli');
      await waitFor(() => stdout.includes('GET http://alpha.example.com/cli 200'), { what: `the summary line in:\n${stdout}` });
      expect(stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}\(log\) alpha saw \/cli \[[0-9a-f]+\]$/m);
      expect(stdout).toMatch(/\(warn\) alpha warning/);
      expect(stdout).toMatch(/GET http:\/\/alpha\.example\.com\/cli 200 {2}ok {2}cpu [\d.]+ ms, wall [\d.]+ ms \[[0-9a-f]+\]/);
    } finally {
      child.kill('SIGINT');
    }
    const code = await new Promise((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(0);
  });
});

describe('per-worker log level', () => {
  let cinder: TestCinder;
  const dataDir = tempDataDir();

  beforeAll(async () => {
    cinder = await startCinder({ dataDir, observability: { defaultMetrics: false } });
    for (const name of ['noisy', 'quiet']) {
      const res = await cinder.admin('PUT', `/workers/${name}`, { body: multipart({ main_module: 'index.js' }, { 'index.js': WORKER(name) }) });
      expect(res.status).toBe(201);
    }
  });
  afterAll(async () => {
    await cinder?.close({ cleanup: true });
  });

  const consoleLines = (worker: string) => cinder.logs.filter((l) => l.worker === worker && l.console).map((l) => l.msg);

  it('drops a worker\'s lines below its level from the host log, and raises another\'s detail', async () => {
    // The capture logger is at debug: by default every line is kept, console lines tagged.
    await cinder.get('noisy.example.com', '/1');
    expect(consoleLines('noisy')).toEqual(['noisy saw /1', 'noisy debug detail', 'noisy warning']);
    const line = cinder.logs.find((l) => l.msg === 'noisy saw /1')!;
    expect(line).toMatchObject({ worker: 'noisy', version: expect.any(String), requestId: expect.stringMatching(/^[0-9a-f]{16}$/), console: 'log' });

    expect((await cinder.admin('GET', '/workers/noisy/log-level')).body).toEqual({ worker: 'noisy', level: 'debug', default: true });
    const set = await cinder.admin('PUT', '/workers/noisy/log-level', { json: { level: 'warn' } });
    expect(set.body).toEqual({ worker: 'noisy', level: 'warn', default: false });

    const tail = await openTail(cinder.server.adminUrl, 'noisy');
    await tail.ready;
    await cinder.get('noisy.example.com', '/2');
    await cinder.get('quiet.example.com', '/2');
    await waitFor(() => tail.events.some((e) => e.event === 'invocation'), { what: 'the summary' });
    tail.close();
    expect(consoleLines('noisy').filter((m) => m.includes('/2') || m === 'noisy warning')).toEqual(['noisy warning', 'noisy warning']);
    expect(consoleLines('noisy')).toHaveLength(4);
    // Other workers keep the server's level; the tail still sees every line.
    expect(consoleLines('quiet')).toEqual(['quiet saw /2', 'quiet debug detail', 'quiet warning']);
    expect(tail.events.filter((e) => e.event === 'log').map((e) => e.data.level)).toEqual(['log', 'debug', 'warn']);

    expect((await cinder.admin('PUT', '/workers/noisy/log-level', { json: { level: 'loud' } })).status).toBe(400);
    expect((await cinder.admin('PUT', '/workers/nobody/log-level', { json: { level: 'warn' } })).status).toBe(404);
  });

  it('keeps the setting across a restart, and `cinder log-level` shows and resets it', async () => {
    await cinder.close();
    cinder = await startCinder({ dataDir, observability: { defaultMetrics: false } });
    expect((await cinder.admin('GET', '/workers/noisy/log-level')).body).toMatchObject({ level: 'warn', default: false });
    await cinder.get('noisy.example.com', '/3');
    await sleep(50);
    expect(consoleLines('noisy')).toEqual(['noisy warning']);

    const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
    const cli = (args: string[]) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, CINDER_URL: cinder.server.adminUrl, CINDER_TOKEN: TOKEN } });
        let out = '';
        child.stdout.on('data', (c) => (out += c));
        child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
      });
    expect(await cli(['log-level', 'noisy'])).toBe('noisy: warn\n');
    expect(await cli(['log-level', 'noisy', 'default'])).toBe("noisy: debug (the server's level)\n");
    await cinder.get('noisy.example.com', '/4');
    expect(consoleLines('noisy')).toContain('noisy debug detail');
  });
});
