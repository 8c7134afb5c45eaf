// /restart on the admin API (a rolling restart by the node's supervisor): the operator's only; a
// node without a supervisor says why it cannot; with one, POST starts a restart and GET follows it; a supervisor that does not answer is a 503 saying so. The restart itself, under
// load with real processes: test/scale/processes.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCinder, type TestCinder } from './helpers.js';
import type { RestartControl, RestartStatus } from '../../src/control/restart-routes.js';

let plain: TestCinder;
let supervised: TestCinder;
let status: RestartStatus | null = null;
let reachable = true;
const control: RestartControl = {
  async start() {
    if (!reachable) throw new Error('the supervisor is not reachable');
    status ??= { id: 1, state: 'rolling', startedAt: new Date(0).toISOString(), replaced: 0, processes: 2 };
    return status;
  },
  async status() {
    if (!reachable) throw new Error('the supervisor is not reachable');
    return status;
  },
};

beforeAll(async () => {
  plain = await startCinder();
  supervised = await startCinder({ cluster: { processes: 2, metrics: null, restart: control } });
});
afterAll(async () => {
  await plain?.close({ cleanup: true });
  await supervised?.close({ cleanup: true });
});

describe('/restart', () => {
  it('is 409 on a node without a supervisor, saying why', async () => {
    const res = await plain.admin('POST', '/restart');
    expect(res.status).toBe(409);
    expect(res.body.error).toMatch(/without a supervisor \(--no-supervisor\)/);
    expect((await plain.admin('GET', '/restart')).status).toBe(409);
  });

  // (whether a second POST joins the running restart is the supervisor's doing, not the route's:
  // test/scale/processes.test.ts asks a real supervisor)
  it('starts a restart (202), then reports it', async () => {
    expect((await supervised.admin('GET', '/restart')).body).toEqual({ restart: null });
    const started = await supervised.admin('POST', '/restart');
    expect(started.status).toBe(202);
    expect(started.body.restart).toMatchObject({ id: 1, state: 'rolling', processes: 2 });
    status = { ...status!, state: 'done', replaced: 2, finishedAt: new Date(1).toISOString() };
    expect((await supervised.admin('GET', '/restart')).body.restart).toMatchObject({ id: 1, state: 'done', replaced: 2 });
  });

  it('is 503 when the supervisor does not answer', async () => {
    reachable = false;
    const res = await supervised.admin('POST', '/restart');
    reachable = true;
    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/could not reach this node's supervisor/);
  });

  it('needs the operator token', async () => {
    const account = await supervised.admin('POST', '/accounts', { json: { name: 'tenant' } });
    expect(account.status).toBe(201);
    const made = await supervised.admin('POST', '/accounts/tenant/tokens', { json: {} });
    expect(made.status).toBe(201);
    const res = await supervised.admin('POST', '/restart', { headers: { authorization: `Bearer ${made.body.token}` } });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatch(/needs the operator's admin token/);
  });
});
