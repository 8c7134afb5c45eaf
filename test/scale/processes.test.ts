// `cinder serve --processes 2`: two serving processes on one port behind the supervisor (no Redis:
// the node's SQLite files are shared and the supervisor relays). A deploy reaches both; /metrics
// sums both; kill -9 of one under steady load fails only what was on it and it is replaced; a
// rolling restart (SIGHUP, or POST /restart through `cinder restart`) under load fails nothing; a cron fires once per tick, not once per
// process; SIGTERM lets a slow request and its waitUntil work finish, then exits 0.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN, admin, childPids, supervisorLines, deploy, get, metricValue, startNode, steadyLoad, stopNode, until, versionWorker, sleep, type Node } from './helpers.js';

const bin = fileURLToPath(new URL('../../bin/cinder.js', import.meta.url));
const KV = { bindings: [{ type: 'kv_namespace', name: 'KV', namespace_id: 'scale' }] };
let node: Node;

beforeAll(async () => {
  node = await startNode({ processes: 2, nodeId: 'node-a' });
}, 120_000);

afterAll(async () => {
  if (node) await stopNode(node);
});

/** Ten requests on fresh connections: round-robin puts them on both processes. */
async function tenFresh(worker: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 10; i++) out.push((await get(node, worker, '/', false)).text);
  return out;
}

describe('--processes 2', () => {
  it('serves a deploy from both processes, and /metrics sums them under the node label', async () => {
    expect((await deploy(node, 'hello', versionWorker('v1'))).status).toBe(201);
    expect(new Set(await tenFresh('hello'))).toEqual(new Set(['v1']));
    expect((await deploy(node, 'hello', versionWorker('v2'))).status).toBe(201);
    // The other process hears of it through the supervisor: the first requests may still see v1
    // (as many as a loaded machine serves before the relay lands: a deadline, not a count).
    let tries = 0;
    const deadline = Date.now() + 20_000;
    let answer = '';
    while ((answer = (await get(node, 'hello', '/', false)).text) !== 'v2' && Date.now() < deadline) tries++;
    expect(answer).toBe('v2');
    expect(new Set(await tenFresh('hello'))).toEqual(new Set(['v2']));

    const metrics = (await admin(node, 'GET', '/metrics')).text;
    // 10 + 10 + the probes, all counted whichever process served them.
    expect(metricValue(metrics, 'cinder_requests_total', { worker: 'hello', node: 'node-a' })).toBe(20 + tries + 1);
    expect(metricValue(metrics, 'cinder_serving_processes')).toBe(2);
    expect(metricValue(metrics, 'cinder_workers')).toBe(1);
    const health = (await admin(node, 'GET', '/healthz')).json();
    expect(health).toMatchObject({ ok: true, node: 'node-a', processes: 2 });
  }, 60_000);

  it('tail on the admin port shows the invocations of both processes', async () => {
    const controller = new AbortController();
    const res = await fetch(`${node.adminUrl}/workers/hello/tail`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let seen = '';
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        seen += new TextDecoder().decode(value);
      }
    })();
    // The other process hears of the subscriber through the supervisor; then every request shows,
    // whichever process served it (a new connection each: round-robin alternates them).
    const shown = await until(async () => {
      await get(node, 'hello', '/', false);
      // Events relayed from the other process carry its node; this process's own do not.
      const events = [...seen.matchAll(/event: invocation\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]) as { node?: string });
      return events.some((e) => e.node === 'node-a') && events.some((e) => e.node === undefined);
    }, 30_000, 100);
    controller.abort();
    await reading;
    expect(shown, seen.slice(0, 1500)).toBe(true);
  }, 60_000);

  it('kill -9 of one process under steady load: only what was on it fails; it is replaced, the other serves on', async () => {
    const before = childPids(node);
    const victim = before.at(-1)!;
    const load = steadyLoad(node, 'hello', 8, /^v2$/);
    await sleep(1000);
    process.kill(victim, 'SIGKILL');
    expect(await until(() => childPids(node).length > before.length, 30_000), supervisorLines(node)).toBe(true);
    const replacement = childPids(node).at(-1)!;
    expect(await until(async () => (await admin(node, 'GET', '/metrics')).text.includes('cinder_serving_processes{node="node-a"} 2'), 30_000)).toBe(true);
    await sleep(1000);
    await load.stop();
    // At most one failure per connection the dead process held (8 connections in all).
    expect(load.failed, load.errors.join('\n')).toBeLessThanOrEqual(8);
    expect(load.ok).toBeGreaterThan(50);
    expect(() => process.kill(replacement, 0)).not.toThrow();
    // Replaced at once: no backoff for a first death, and the new process reported serving (the
    // supervisor logs how long the slot was empty; a figure, not asserted: start-up time is the
    // machine's, 0.3-1 s here when quiet).
    expect(supervisorLines(node)).toMatch(/"delayMs":0[^\n]*supervisor: serving process \d exited \(SIGKILL\); restart 1"/);
    expect(await until(() => /supervisor: serving process \d replaced: serving \d+ ms after its predecessor exited/.test(node.stdout), 30_000)).toBe(true);
    expect(metricValue((await admin(node, 'GET', '/metrics')).text, 'cinder_supervisor_restarts_total', { reason: 'exit' })).toBe(1);
    expect(new Set(await tenFresh('hello'))).toEqual(new Set(['v2']));
  }, 60_000);

  it('a rolling restart (SIGHUP) under steady load fails no request', async () => {
    const before = childPids(node).length;
    const load = steadyLoad(node, 'hello', 8, /^v2$/);
    await sleep(500);
    node.proc.kill('SIGHUP');
    expect(await until(() => /rolling restart done/.test(node.stdout), 60_000)).toBe(true);
    await sleep(500);
    await load.stop();
    expect(load.failed, load.errors.join('\n')).toBe(0);
    expect(load.ok).toBeGreaterThan(50);
    expect(childPids(node).length).toBe(before + 2);
    expect(new Set(await tenFresh('hello'))).toEqual(new Set(['v2']));
  }, 90_000);

  it('a rolling restart through the admin API (`cinder restart`) under steady load fails no request', async () => {
    const before = childPids(node).length;
    const load = steadyLoad(node, 'hello', 8, /^v2$/);
    await sleep(500);
    const run = spawn(process.execPath, ['--no-node-snapshot', bin, 'restart', '--url', node.adminUrl, '--token', TOKEN], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    run.stdout!.on('data', (chunk) => (out += chunk));
    run.stderr!.on('data', (chunk) => (out += chunk));
    const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
    await sleep(500);
    await load.stop();
    expect(code, out).toBe(0);
    expect(out).toMatch(/Rolling restart \d+ of 2 serving processes under way/);
    expect(out).toMatch(/Done: 2 serving processes replaced/);
    expect(load.failed, load.errors.join('\n')).toBe(0);
    expect(load.ok).toBeGreaterThan(50);
    expect(childPids(node).length).toBe(before + 2);
    const status = (await admin(node, 'GET', '/restart')).json().restart;
    expect(status).toMatchObject({ state: 'done', replaced: 2, processes: 2 });
    expect(node.stdout).toMatch(/rolling restart asked for on the admin API/);
    expect(new Set(await tenFresh('hello'))).toEqual(new Set(['v2']));
  }, 90_000);

  it('a second POST /restart while one rolls joins it: one restart, each process replaced once', async () => {
    const before = childPids(node).length;
    const [first, second] = await Promise.all([admin(node, 'POST', '/restart'), admin(node, 'POST', '/restart')]);
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    const started = first.json().restart;
    expect(second.json().restart.id).toBe(started.id);
    let status = started;
    for (let i = 0; i < 300 && status.state === 'rolling'; i++) {
      await sleep(100);
      status = (await admin(node, 'GET', '/restart')).json().restart;
    }
    expect(status).toMatchObject({ id: started.id, state: 'done', replaced: 2, processes: 2 });
    expect(childPids(node).length).toBe(before + 2);
  }, 90_000);

  it('SIGTERM to one serving process under steady load: it drains, fails nothing, and is replaced', async () => {
    const before = childPids(node);
    const victim = before.at(-1)!;
    const load = steadyLoad(node, 'hello', 8, /^v2$/);
    await sleep(800);
    process.kill(victim, 'SIGTERM');
    expect(await until(() => childPids(node).length > before.length, 30_000)).toBe(true);
    expect(await until(() => { try { process.kill(victim, 0); return false; } catch { return true; } }, 30_000)).toBe(true);
    await sleep(800);
    await load.stop();
    expect(load.failed, load.errors.join('\n')).toBe(0);
    expect(load.ok).toBeGreaterThan(50);
    expect(new Set(await tenFresh('hello'))).toEqual(new Set(['v2']));
  }, 90_000);

  it('a cron on a seconds schedule fires once per tick, not once per process', async () => {
    const cron = `export default {
      async fetch(req, env) { const { keys } = await env.KV.list({ prefix: 'tick:' }); return Response.json(keys.map((k) => k.name)); },
      async scheduled(event, env) { await env.KV.put('tick:' + event.scheduledTime + ':' + crypto.randomUUID(), '1'); },
    };`;
    expect((await deploy(node, 'ticker', cron, { ...KV, crons: ['* * * * * *'] })).status).toBe(201);
    await sleep(7000);
    expect((await deploy(node, 'ticker', cron, KV)).status).toBe(201); // no crons: stop ticking
    await sleep(1500);
    const names = JSON.parse((await get(node, 'ticker')).text) as string[];
    const perTick = new Map<string, number>();
    for (const name of names) perTick.set(name.split(':')[1], (perTick.get(name.split(':')[1]) ?? 0) + 1);
    expect(perTick.size).toBeGreaterThanOrEqual(4);
    expect([...perTick.values()].every((n) => n === 1), JSON.stringify([...perTick])).toBe(true);
  }, 60_000);

  it('SIGTERM: a slow request and its waitUntil work finish, then the node exits 0', async () => {
    const slow = `export default { async fetch(req, env, ctx) {
      if (new URL(req.url).pathname === '/read') return new Response(String(await env.KV.get('after-response')));
      console.log('slow request started');
      await new Promise((r) => setTimeout(r, 3000));
      ctx.waitUntil(new Promise((r) => setTimeout(r, 1000)).then(() => env.KV.put('after-response', 'written by waitUntil')));
      return new Response('slow done');
    } };`;
    expect((await deploy(node, 'slow', slow, KV)).status).toBe(201);
    const inFlight = get(node, 'slow', '/');
    // In flight for certain (not after a guessed delay: a loaded machine can take longer to get the
    // request to the worker), with seconds to go: the drain is what lets it finish.
    expect(await until(() => node.stdout.includes('slow request started'), 30_000)).toBe(true);
    node.proc.kill('SIGTERM');
    // While it drains, the admin port still answers, and says so (a balancer stops sending).
    await sleep(400);
    const ready = await admin(node, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json()).toMatchObject({ ready: false, reason: 'draining', node: 'node-a' });
    expect(await inFlight).toEqual({ status: 200, text: 'slow done' });
    expect(await node.exit).toBe(0);
    expect(node.stdout).toMatch(/drained in \d+ ms/);

    // What waitUntil wrote after the response is there when the node comes back.
    node = await startNode({ processes: 1, dataDir: node.dataDir, nodeId: 'node-a' });
    expect(await get(node, 'slow', '/read')).toEqual({ status: 200, text: 'written by waitUntil' });
  }, 90_000);
});
