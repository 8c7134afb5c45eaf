// `cinder dev` fires a scheduled event by hand at /__scheduled?cron=... (and wrangler's newer
// /cdn-cgi/handler/scheduled), before any worker sees the request.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startDev, type DevServer } from '../../src/app/dev.js';
import { captureLogger } from '../helpers/server.js';

describe('cinder dev /__scheduled', () => {
  let dev: DevServer;
  const { logger, logs } = captureLogger();

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cinder-scheduled-'));
    writeFileSync(
      join(dir, 'cron.js'),
      `let last = null;
      export default {
        async scheduled(controller, env, ctx) {
          if (controller.cron === 'throw') throw new Error('scheduled went wrong');
          if (controller.cron === 'spin') for (;;) {}
          last = { cron: controller.cron, scheduledTime: controller.scheduledTime };
          console.log('scheduled ran: ' + controller.cron);
        },
        fetch(request) { return Response.json(last) },
      };\n`,
    );
    writeFileSync(join(dir, 'other.js'), `export default { fetch() { return new Response('other') } };\n`);
    dev = await startDev({ paths: [dir], port: 0, logger, limits: { cpuMs: 50 } });
  });
  afterAll(async () => {
    await dev?.close();
  });

  const get = async (path: string, host?: string) => {
    const res = await request(`${dev.url}${path}`, { headers: host ? { host } : {} });
    return { status: res.statusCode, text: await res.body.text() };
  };

  it('runs the default worker\'s scheduled() with the given cron', async () => {
    expect(await get('/__scheduled?cron=*/5+*+*+*+*')).toEqual({ status: 200, text: 'Ran scheduled event\n' });
    const seen = JSON.parse((await get('/')).text);
    expect(seen.cron).toBe('*/5 * * * *');
    expect(Math.abs(seen.scheduledTime - Date.now())).toBeLessThan(5000);
    expect(logs.some((l) => l.worker === 'cron' && l.msg === 'scheduled ran: */5 * * * *')).toBe(true);
  });

  it('takes a time and wrangler\'s /cdn-cgi/handler/scheduled spelling', async () => {
    expect((await get('/cdn-cgi/handler/scheduled?cron=0+12+*+*+*&time=1700000000000')).status).toBe(200);
    expect(JSON.parse((await get('/')).text)).toEqual({ cron: '0 12 * * *', scheduledTime: 1700000000000 });
  });

  it('picks the worker by Host, and reports one that has no scheduled handler', async () => {
    const res = await get('/__scheduled?cron=*+*+*+*+*', 'other.localhost');
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/^Scheduled event failed: /);
  });

  it('answers 500 with the stack when the handler throws, 503 over a limit', async () => {
    const thrown = await get('/__scheduled?cron=throw');
    expect(thrown.status).toBe(500);
    expect(thrown.text).toMatch(/Error: scheduled went wrong\n\s+at /);
    const spun = await get('/__scheduled?cron=spin');
    expect(spun.status).toBe(503);
    expect(spun.text).toMatch(/exceeded CPU time limit/);
    // ... and the worker still serves.
    expect((await get('/')).status).toBe(200);
  });

  it('404s for a worker that does not exist, and leaves other paths to the worker', async () => {
    expect((await get('/__scheduled?worker=nope')).status).toBe(404);
    expect((await get('/__scheduledx')).status).toBe(200);
  });
});
