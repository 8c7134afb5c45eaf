// Usage survives kill -9 (of `cinder serve --no-supervisor`, the serving process itself) up to one
// batch window. The meter writes an invocation's usage at most
// DEFAULT_USAGE_FLUSH_MS (100 ms) after it ends, in one SQLite transaction per batch (WAL,
// synchronous=NORMAL: committed means in the WAL file, which a killed process cannot take back).
// Before, rows were written every 5 s, so up to 5 s of traffic was lost on kill -9.
//
// The bound asserted: every request answered more than WINDOW_MS before the kill is reported after
// the restart, where WINDOW_MS is the flush delay plus an allowance for the server's event loop
// running the timer late on a busy machine. Requests go in bursts separated by pauses longer than
// the window, so all bursts but the last must be there whole, and at most the last burst is lost.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { DEFAULT_USAGE_FLUSH_MS } from '../../src/observability/usage.js';
import { startServeProcess } from '../helpers/serve-process.js';

const TOKEN = 'usage-durability-token';
/** the flush delay plus how late a loaded event loop may run its timer */
const WINDOW_MS = DEFAULT_USAGE_FLUSH_MS + 400;
const BURSTS = 4;
const PER_BURST = 40;
const PAUSE_MS = WINDOW_MS + 300;

const dataDir = mkdtempSync(join(tmpdir(), 'cinder-usage-kill-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

const serve = () => startServeProcess(dataDir, TOKEN, children);

describe('usage and kill -9', () => {
  it('keeps every request answered more than one batch window before the kill', async () => {
    const first = await serve();
    const deployed = await fetch(`http://127.0.0.1:${first.adminPort}/workers/hello`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/javascript' },
      body: `export default { fetch() { return new Response('hello') } }`,
    });
    expect(deployed.status, await deployed.text()).toBeLessThan(300);

    const answeredAt: number[] = [];
    for (let burst = 0; burst < BURSTS; burst++) {
      if (burst > 0) await new Promise((r) => setTimeout(r, PAUSE_MS));
      for (let i = 0; i < PER_BURST; i++) {
        const res = await request(`http://127.0.0.1:${first.port}/`, { headers: { host: 'hello.example' } });
        expect(await res.body.text()).toBe('hello');
        answeredAt.push(performance.now());
      }
    }
    const killedAt = performance.now();
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');

    const answered = answeredAt.length;
    const mayBeLost = answeredAt.filter((t) => t > killedAt - WINDOW_MS).length;
    // the design's bound: at most the last burst can fall in the window
    expect(mayBeLost).toBeLessThanOrEqual(PER_BURST);

    const second = await serve();
    const res = await fetch(`http://127.0.0.1:${second.adminPort}/workers/hello/usage?from=1h`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const usage = (await res.json()) as { requests: number };
    expect(usage.requests).toBeGreaterThanOrEqual(answered - mayBeLost);
    expect(usage.requests).toBeLessThanOrEqual(answered);
    second.child.kill('SIGTERM');
    await second.exited;
  });
});
