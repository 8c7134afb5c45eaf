// Cron triggers: expressions validated as Workers takes them (plus a seconds field), runs delivered
// on a seconds-level schedule to scheduled() with controller.cron and scheduledTime, a run still
// going when the next is due skipped (never two at once), failures logged with their stack and
// retried unless noRetry(), limits applied; and through `cinder serve`, schedules that follow
// uploads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CronScheduler, validateCron, type CronRun } from '../../src/data-plane/cron.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';
import { sleep, waitFor } from './helpers.js';

describe('validateCron', () => {
  it('accepts Workers cron syntax and a leading seconds field', () => {
    for (const good of ['* * * * *', '*/5 * * * *', '0 17 * * sun', '10 7 * * mon-fri', '0 15 1 * *', '59 23 LW * *', '0 0 * * 1#2', '*/10 * * * * *', '0 0 12 * * *']) {
      expect(validateCron(good), good).toBeNull();
    }
  });

  it('names what is wrong', () => {
    expect(validateCron('61 * * * *')).toMatch(/^invalid cron "61 \* \* \* \*": .*minute/);
    expect(validateCron('every minute')).toMatch(/^invalid cron "every minute"/);
    expect(validateCron('* * * *')).toMatch(/invalid cron/);
    expect(validateCron('* * * * * * *')).toMatch(/invalid cron .*5 or 6/);
    expect(validateCron('0 0 31 2 *')).toBe('cron "0 0 31 2 *" never fires');
    expect(validateCron('')).toMatch(/non-empty/);
  });
});

describe('CronScheduler', () => {
  let server: TestServer;
  let scheduler: CronScheduler;
  const runs: CronRun[] = [];
  const logLines = () => server.logs.filter((l) => l.console).map((l) => `${l.worker}: ${l.msg}`);

  beforeAll(async () => {
    server = await startTestServer({
      ticker: `export default {
        async scheduled(controller) { console.log('tick ' + controller.cron + ' ' + controller.scheduledTime + ' ' + (controller.scheduledTime === new Date(controller.scheduledTime).getTime())); },
        fetch() { return new Response('ok') },
      }`,
      slow: `let active = 0;
      export default {
        async scheduled(controller) {
          active++;
          console.log('slow start active=' + active);
          await new Promise((r) => setTimeout(r, 1300));
          active--;
        },
      }`,
      flaky: `export default { async scheduled() { throw new Error('boom from flaky') } }`,
      final: `export default { async scheduled(controller) { controller.noRetry(); throw new TypeError('final answer') } }`,
      spin: { code: `export default { scheduled() { for (;;) {} } }`, limits: { cpuMs: 20 } },
    });
    scheduler = new CronScheduler(server.runtime, { logger: server.runtime.logger, retryDelayMs: 100, retries: 2 });
    scheduler.onRun((run) => runs.push(run));
  });
  afterAll(async () => {
    scheduler.close();
    await server.close();
  });

  it('delivers runs on a seconds-level schedule with controller.cron and scheduledTime', async () => {
    scheduler.sync('ticker', ['*/1 * * * * *']);
    const ok = await waitFor(() => {
      const done = runs.filter((r) => r.worker === 'ticker' && r.outcome === 'ok');
      return done.length >= 3 && done;
    }, { what: 'three ticks' });
    scheduler.unschedule('ticker');
    // Due on whole seconds, one second apart, each delivered once.
    const times = ok.map((r) => r.scheduledTime);
    for (const t of times) expect(t % 1000).toBe(0);
    expect(new Set(times).size).toBe(times.length);
    expect(times[1] - times[0]).toBe(1000);
    await waitFor(() => logLines().filter((l) => l.startsWith('ticker: tick */1 * * * * * ')).length >= 3, { what: 'tick log lines' });
    const line = logLines().find((l) => l.startsWith('ticker: tick'))!;
    const [, , , , , , , , when, isDate] = line.split(' ');
    expect(times).toContain(Number(when));
    expect(isDate).toBe('true');
    // Cron runs are invocations like any other: the log line is tagged with the request id.
    expect(server.logs.find((l) => l.console && l.worker === 'ticker')?.requestId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('stops when unscheduled or re-synced without the expression', async () => {
    scheduler.sync('ticker', ['*/1 * * * * *']);
    expect(scheduler.schedules('ticker')).toHaveLength(1);
    scheduler.sync('ticker', []);
    expect(scheduler.schedules('ticker')).toEqual([]);
    const before = runs.filter((r) => r.worker === 'ticker').length;
    await sleep(1500);
    expect(runs.filter((r) => r.worker === 'ticker').length).toBe(before);
  });

  it('skips a run that is due while the previous one is still going, and says so', async () => {
    scheduler.sync('slow', ['* * * * * *']);
    await waitFor(() => runs.filter((r) => r.worker === 'slow' && r.outcome === 'ok').length >= 2, { what: 'two slow runs', timeout: 8000 });
    scheduler.unschedule('slow');
    const slow = runs.filter((r) => r.worker === 'slow');
    expect(slow.filter((r) => r.outcome === 'skipped').length).toBeGreaterThanOrEqual(1);
    // Never two at once: every run saw itself alone.
    const starts = logLines().filter((l) => l.startsWith('slow: slow start'));
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(starts.every((l) => l.endsWith('active=1'))).toBe(true);
    expect(server.logs.some((l) => l.worker === 'slow' && /skipped: the previous run/.test(String(l.msg)))).toBe(true);
  });

  it('logs a failing run with its stack and retries it, unless the handler called noRetry()', async () => {
    scheduler.sync('flaky', ['*/3 * * * * *']);
    scheduler.sync('final', ['*/3 * * * * *']);
    const flaky = await waitFor(() => {
      const done = runs.filter((r) => r.worker === 'flaky');
      return done.some((r) => r.attempt === 2) && done;
    }, { what: 'two retries of flaky' });
    await waitFor(() => runs.some((r) => r.worker === 'final'), { what: 'a final run' });
    await sleep(500);
    scheduler.unschedule('flaky');
    scheduler.unschedule('final');
    // The same due time, delivered three times (first + two retries), all failing.
    const retried = flaky.find((r) => r.attempt === 2)!;
    expect(flaky.filter((r) => r.scheduledTime === retried.scheduledTime).map((r) => r.attempt)).toEqual([0, 1, 2]);
    expect(flaky.every((r) => r.outcome === 'exception')).toBe(true);
    // noRetry(): delivered once per due time.
    const final = runs.filter((r) => r.worker === 'final');
    expect(final.every((r) => r.attempt === 0 && r.outcome === 'exception')).toBe(true);
    const failure = server.logs.find((l) => l.worker === 'flaky' && l.outcome === 'exception')!;
    expect(failure.level).toBe(50);
    expect(String(failure.err)).toMatch(/Error: boom from flaky\n\s+at /);
    expect(String(failure.msg)).toContain('cron run of flaky (*/3 * * * * *) threw: Error: boom from flaky');
    expect(server.logs.find((l) => l.worker === 'final' && l.outcome === 'exception')?.noRetry).toBe(true);
  });

  it('with a claim, runs each due time once across several schedulers (nodes)', async () => {
    const claimed = new Set<string>();
    const claim = (worker: string, cron: string, time: number) => {
      const key = `${worker} ${cron} ${time}`;
      if (claimed.has(key)) return false;
      claimed.add(key);
      return true;
    };
    const nodes = [0, 1, 2].map(() => new CronScheduler(server.runtime, { logger: server.runtime.logger, claim }));
    const delivered: CronRun[] = [];
    for (const node of nodes) {
      node.onRun((run) => delivered.push(run));
      node.sync('ticker', ['*/1 * * * * *']);
    }
    await waitFor(() => delivered.length >= 3, { what: 'three runs' });
    for (const node of nodes) node.close();
    const times = delivered.map((r) => r.scheduledTime);
    expect(new Set(times).size).toBe(times.length);
  });

  it('applies the worker\'s limits to a run', async () => {
    const run = await scheduler.fire('spin', '* * * * *');
    expect(run.outcome).toBe('limit');
    expect(run.error).toMatch(/exceeded CPU time limit/);
    // The runtime is fine afterwards.
    expect((await scheduler.fire('ticker', '5 4 * * *')).outcome).toBe('ok');
  });

  it('reports a worker that is gone', async () => {
    const run = await scheduler.fire('nobody', '* * * * *');
    expect(run.outcome).toBe('unavailable');
  });
});

describe('crons through cinder serve', () => {
  let cinder: TestCinder;
  beforeAll(async () => {
    cinder = await startCinder({ observability: { defaultMetrics: false } });
  });
  afterAll(async () => {
    await cinder?.close({ cleanup: true });
  });

  const worker = `export default { async scheduled(controller) { console.log('cron fired: ' + controller.cron) }, fetch() { return new Response('x') } }`;

  it('schedules the crons of an upload, and follows later uploads', async () => {
    const put = await cinder.admin('PUT', '/workers/ticks', { body: multipart({ main_module: 'index.js', crons: ['*/1 * * * * *'] }, { 'index.js': worker }) });
    expect(put.status).toBe(201);
    const schedules = await cinder.admin('GET', '/workers/ticks/schedules');
    expect(schedules.body.crons).toEqual([{ cron: '*/1 * * * * *', next: expect.any(String), running: false }]);
    await waitFor(() => cinder.logs.filter((l) => l.worker === 'ticks' && l.msg === 'cron fired: */1 * * * * *').length >= 2, { what: 'cron runs in the log' });

    // A new version without crons: nothing scheduled any more.
    expect((await cinder.admin('PUT', '/workers/ticks', { body: multipart({ main_module: 'index.js', crons: [] }, { 'index.js': worker }) })).status).toBe(201);
    expect((await cinder.admin('GET', '/workers/ticks/schedules')).body.crons).toEqual([]);
    await sleep(300);
    const count = cinder.logs.filter((l) => l.msg === 'cron fired: */1 * * * * *').length;
    await sleep(1500);
    expect(cinder.logs.filter((l) => l.msg === 'cron fired: */1 * * * * *').length).toBe(count);

    // Rolling back to the first version brings its cron back.
    expect((await cinder.admin('POST', '/workers/ticks/rollback', { json: { version: 1 } })).status).toBe(200);
    expect((await cinder.admin('GET', '/workers/ticks/schedules')).body.crons.map((c: { cron: string }) => c.cron)).toEqual(['*/1 * * * * *']);

    // Deleting the worker unschedules it.
    expect((await cinder.admin('DELETE', '/workers/ticks')).status).toBe(200);
    await sleep(300);
    const after = cinder.logs.filter((l) => l.msg === 'cron fired: */1 * * * * *').length;
    await sleep(1500);
    expect(cinder.logs.filter((l) => l.msg === 'cron fired: */1 * * * * *').length).toBe(after);
  });

  it('schedules the stored crons again when the server restarts', async () => {
    expect((await cinder.admin('PUT', '/workers/nightly', { body: multipart({ main_module: 'index.js', crons: ['0 3 * * *'] }, { 'index.js': worker }) })).status).toBe(201);
    const { dataDir } = cinder;
    await cinder.close();
    cinder = await startCinder({ dataDir, observability: { defaultMetrics: false } });
    const { crons } = (await cinder.admin('GET', '/workers/nightly/schedules')).body;
    expect(crons).toEqual([{ cron: '0 3 * * *', next: expect.stringMatching(/T03:00:00\.000Z$/), running: false }]);
  });

  it('refuses a bad cron at upload with a 400 that names it', async () => {
    const seven = await cinder.admin('PUT', '/workers/badcron', { body: multipart({ main_module: 'index.js', crons: ['* * * * * * *'] }, { 'index.js': worker }) });
    expect(seven.status).toBe(400);
    expect(seven.body.error).toMatch(/invalid cron "\* \* \* \* \* \* \*"/);
    const words = await cinder.admin('PUT', '/workers/badcron', { body: multipart({ main_module: 'index.js', crons: ['every day'] }, { 'index.js': worker }) });
    expect(words.status).toBe(400);
    expect(words.body.error).toMatch(/invalid cron "every day"/);
  });
});
