// Durable Objects through a real `cinder serve`: what a deploy refuses (bindings to classes the
// worker does not export, classes without a migration, migrations that do not fit), migrations
// that rename and delete, tenants kept to their own objects, and alarms that fire and retry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';

let cinder: TestCinder;

// A first Durable Object event uses up to ~17 ms of CPU here (of the 50 ms default): these tests
// are about deploys and alarms, so their workers get room for a slower, loaded CI machine.
async function deploy(name: string, code: string, metadata: Record<string, unknown> = {}, token?: string) {
  return cinder.admin('PUT', `/workers/${name}`, { body: multipart({ main_module: 'index.js', limits: { cpu_ms: 1000 }, ...metadata }, { 'index.js': code }), headers: token ? { authorization: `Bearer ${token}` } : undefined });
}

const binding = (name: string, class_name: string, script_name?: string) => ({ type: 'durable_object_namespace', name, class_name, ...(script_name ? { script_name } : {}) });

const ROOM = `
export class Room {
  constructor(ctx) { this.ctx = ctx; }
  async fetch(request) {
    const url = new URL(request.url);
    if (request.method === 'PUT') { await this.ctx.storage.put('v', url.searchParams.get('v')); return new Response('ok'); }
    return new Response(String(await this.ctx.storage.get('v') ?? 'empty'));
  }
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const ns = env[url.searchParams.get('ns') ?? 'ROOM'];
    try {
      const id = url.searchParams.get('id') ? ns.idFromString(url.searchParams.get('id')) : ns.idFromName(url.searchParams.get('name') ?? 'lobby');
      if (url.pathname === '/id') return new Response(id.toString());
      return await ns.get(id).fetch(request);
    } catch (e) { return new Response(e.name + ': ' + e.message, { status: 400 }); }
  },
};`;

beforeAll(async () => {
  cinder = await startCinder({ durableObjects: { alarms: { retryBaseMs: 50 } } });
});

afterAll(async () => {
  await cinder?.close({ cleanup: true });
});

describe('deploying Durable Objects', () => {
  it('refuses a binding to a class the worker does not export', async () => {
    const res = await deploy('nope', ROOM, { bindings: [binding('ROOM', 'Lobby')], migrations: { new_tag: 'v1', new_classes: ['Lobby'] } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/create Durable Object class Lobby, but worker nope does not export a class of that name/);
  });

  it('refuses a class without a migration that creates it, naming the fix', async () => {
    const res = await deploy('nomig', ROOM, { bindings: [binding('ROOM', 'Room')] });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/binding ROOM: class Room has no migration creating it; add one, e\.g\. \[\[migrations\]\]/);
  });

  it('refuses malformed bindings and migrations by name', async () => {
    const noClass = await deploy('bad', ROOM, { bindings: [{ type: 'durable_object_namespace', name: 'ROOM' }] });
    expect(noClass.status).toBe(400);
    expect(noClass.body.error).toMatch(/metadata\.bindings\[0\]\.class_name must be a non-empty string/);
    const transfer = await deploy('bad', ROOM, { migrations: { new_tag: 'v1', transferred_classes: [{ from: 'A', from_script: 'x', to: 'B' }] } });
    expect(transfer.status).toBe(400);
    expect(transfer.body.error).toMatch(/transferred_classes: moving Durable Object classes between workers is not supported/);
    const rename = await deploy('bad', ROOM, { migrations: { new_tag: 'v1', renamed_classes: [{ from: 'Ghost', to: 'Room' }] } });
    expect(rename.status).toBe(400);
    expect(rename.body.error).toMatch(/cannot rename class Ghost: worker bad has no Durable Object class of that name/);
  });

  it('applies a migration once per tag, keeps objects through a rename, and deletes a class with its data', async () => {
    expect((await deploy('rooms', ROOM, { bindings: [binding('ROOM', 'Room')], migrations: [{ tag: 'v1', new_classes: ['Room'] }] })).status).toBe(201);
    expect((await cinder.get('rooms.example.com', '/?v=kept', { method: 'PUT' })).text).toBe('ok');
    const id = (await cinder.get('rooms.example.com', '/id')).text;
    // The same steps again: v1 is already applied, nothing happens.
    expect((await deploy('rooms', ROOM, { bindings: [binding('ROOM', 'Room')], migrations: [{ tag: 'v1', new_classes: ['Room'] }] })).status).toBe(201);
    // A class no longer exported while it has objects is refused.
    const dropped = await deploy('rooms', ROOM.replace('export class Room', 'class Room'), { bindings: [] });
    expect(dropped.status).toBe(400);
    expect(dropped.body.error).toMatch(/has Durable Objects of class Room but no longer exports it/);
    // Renamed: same objects, same ids.
    const renamed = ROOM.replace('export class Room', 'export class Hall');
    const res = await deploy('rooms', renamed, { bindings: [binding('ROOM', 'Hall')], migrations: [{ tag: 'v1', new_classes: ['Room'] }, { tag: 'v2', renamed_classes: [{ from: 'Room', to: 'Hall' }] }] });
    expect(res.status, res.text).toBe(201);
    expect((await cinder.get('rooms.example.com', '/')).text).toBe('kept');
    expect((await cinder.get('rooms.example.com', '/id')).text).toBe(id);
    // Deleted: the binding must go too, and a class made again later starts empty.
    const deleted = await deploy('rooms', ROOM.replace('export class Room', 'class Room'), { bindings: [], migrations: [{ tag: 'v3', deleted_classes: ['Hall'] }] });
    expect(deleted.status, deleted.text).toBe(201);
    expect((await deploy('rooms', renamed, { bindings: [binding('ROOM', 'Hall')], migrations: [{ tag: 'v4', new_classes: ['Hall'] }] })).status).toBe(201);
    expect((await cinder.get('rooms.example.com', '/')).text).toBe('empty');
  });

  it('binds another worker of the account by script_name', async () => {
    expect((await deploy('host', ROOM, { migrations: { new_tag: 'v1', new_classes: ['Room'] } })).status).toBe(201);
    const res = await deploy('front', ROOM.replace(/export class Room[\s\S]*?\n}\n/, ''), { bindings: [binding('ROOM', 'Room', 'host')] });
    expect(res.status, res.text).toBe(201);
    expect((await cinder.get('front.example.com', '/?v=via-front', { method: 'PUT' })).text).toBe('ok');
    expect((await cinder.get('front.example.com', '/')).text).toBe('via-front');
    const missing = await deploy('front2', ROOM, { bindings: [binding('ROOM', 'Nope', 'host')] });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatch(/worker host has no Durable Object class Nope in this account/);
  });
});

describe('tenants and Durable Objects', () => {
  it("refuses any way to name another account's objects", async () => {
    const tokens: string[] = [];
    for (const name of ['tenant-a', 'tenant-b']) {
      const account = await cinder.admin('POST', '/accounts', { json: { name } });
      expect(account.status, account.text).toBe(201);
      const token = await cinder.admin('POST', `/accounts/${account.body.id}/tokens`, { json: {} });
      tokens.push(token.body.token);
    }
    const [a, b] = tokens;
    expect((await deploy('vault-a', ROOM, { bindings: [binding('ROOM', 'Room')], migrations: { new_tag: 'v1', new_classes: ['Room'] } }, a)).status).toBe(201);
    expect((await cinder.get('vault-a.example.com', '/?v=secret-of-a', { method: 'PUT' })).text).toBe('ok');
    const idOfA = (await cinder.get('vault-a.example.com', '/id')).text;

    // B binds A's worker by script_name: there is no such class in B's account.
    const cross = await deploy('thief', ROOM, { bindings: [binding('ROOM', 'Room', 'vault-a')] }, b);
    expect(cross.status).toBe(400);
    expect(cross.body.error).toMatch(/worker vault-a has no Durable Object class Room in this account/);

    // B has its own class of the same name: same object name, a different object; A's id is not B's.
    expect((await deploy('vault-b', ROOM, { bindings: [binding('ROOM', 'Room')], migrations: { new_tag: 'v1', new_classes: ['Room'] } }, b)).status).toBe(201);
    expect((await cinder.get('vault-b.example.com', '/')).text).toBe('empty');
    expect((await cinder.get('vault-b.example.com', '/id')).text).not.toBe(idOfA);
    const forged = await cinder.get('vault-b.example.com', `/?id=${idOfA}`);
    expect(forged.status).toBe(400);
    expect(forged.text).toBe('TypeError: Durable Object ID is not valid for this namespace.');
    expect((await cinder.get('vault-a.example.com', '/')).text).toBe('secret-of-a');
  });
});

describe('alarms', () => {
  it('fires alarm() at the time set, and retries with backoff after it throws', async () => {
    const code = `
export class Clock {
  constructor(ctx) { this.ctx = ctx; }
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/arm') {
      await this.ctx.storage.put('failuresLeft', Number(url.searchParams.get('fail') ?? 0));
      await this.ctx.storage.setAlarm(Date.now() + 100);
      return new Response(String(await this.ctx.storage.getAlarm() !== null));
    }
    return Response.json({ runs: await this.ctx.storage.get('runs') ?? [], alarm: await this.ctx.storage.getAlarm() });
  }
  async alarm(info) {
    const runs = (await this.ctx.storage.get('runs')) ?? [];
    runs.push(info.retryCount);
    await this.ctx.storage.put('runs', runs);
    const left = await this.ctx.storage.get('failuresLeft');
    if (left > 0) { await this.ctx.storage.put('failuresLeft', left - 1); throw new Error('alarm failed on purpose'); }
  }
}
export default { fetch(request, env) { const url = new URL(request.url); return env.CLOCK.getByName(url.searchParams.get('name')).fetch(request); } };`;
    expect((await deploy('clock', code, { bindings: [binding('CLOCK', 'Clock')], migrations: { new_tag: 'v1', new_classes: ['Clock'] } })).status).toBe(201);
    expect((await cinder.get('clock.example.com', '/arm?name=once')).text).toBe('true');
    expect((await cinder.get('clock.example.com', '/arm?name=flaky&fail=2')).text).toBe('true');
    await waitFor(async () => JSON.parse((await cinder.get('clock.example.com', '/?name=flaky')).text).runs.length === 3);
    expect(JSON.parse((await cinder.get('clock.example.com', '/?name=once')).text)).toEqual({ runs: [0], alarm: null });
    // Two failures, then success: retryCount 0, 1, 2, and the alarm is cleared.
    expect(JSON.parse((await cinder.get('clock.example.com', '/?name=flaky')).text)).toEqual({ runs: [0, 1, 2], alarm: null });
  });
});

describe('alarms and restarts', () => {
  it('fires an alarm set before a restart, after it', async () => {
    const code = `
export class Later {
  constructor(ctx) { this.ctx = ctx; }
  async fetch(request) {
    if (request.method === 'POST') { await this.ctx.storage.setAlarm(Date.now() + 3000); return new Response('armed'); }
    return new Response(String(await this.ctx.storage.get('fired') ?? 'not yet'));
  }
  async alarm() { await this.ctx.storage.put('fired', 'fired after restart'); }
}
export default { fetch(request, env) { return env.LATER.getByName('x').fetch(request); } };`;
    const first = await startCinder({ durableObjects: {} });
    const dataDir = first.dataDir;
    try {
      const res = await first.admin('PUT', '/workers/later', { body: multipart({ main_module: 'index.js', bindings: [binding('LATER', 'Later')], migrations: { new_tag: 'v1', new_classes: ['Later'] } }, { 'index.js': code }) });
      expect(res.status, res.text).toBe(201);
      expect((await first.get('later.example.com', '/', { method: 'POST' })).text).toBe('armed');
    } finally {
      await first.close();
    }
    const second = await startCinder({ dataDir, durableObjects: {} });
    try {
      expect((await second.get('later.example.com', '/')).text).toBe('not yet');
      await waitFor(async () => (await second.get('later.example.com', '/')).text === 'fired after restart');
    } finally {
      await second.close({ cleanup: true });
    }
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
