// A tenant's runaway statement gets its storage process killed while a neighbour's Durable Object
// (another worker, the same process) is inside `transaction()`: the neighbour's transaction is
// redone in the fresh process and commits whole; its answer is right and nothing it wrote is lost
// or half-kept. Ordered by a fetch the neighbour makes inside its transaction, which the test
// holds until the attacker's call has been ended: no timing.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as undiciRequest } from 'undici';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';

let cinder: TestCinder;
let gate: Server;
let held: ServerResponse[] = [];
let arrived: () => void = () => {};

async function deploy(name: string, code: string, className: string, limits: Record<string, number> = {}) {
  const res = await cinder.admin('PUT', `/workers/${name}`, {
    body: multipart({ main_module: 'index.js', bindings: [{ type: 'durable_object_namespace', name: 'OBJ', class_name: className }], migrations: { new_tag: 'v1', new_sqlite_classes: [className] }, limits }, { 'index.js': code }),
  });
  expect(res.status, res.text).toBe(201);
}

const BANK = (gateUrl: string) => `
export class Bank {
  constructor(ctx) { this.ctx = ctx; }
  async fetch(request) {
    if (new URL(request.url).pathname === '/transfer') {
      await this.ctx.storage.transaction(async (txn) => {
        const a = (await txn.get('a')) ?? 100;
        await txn.put('a', a - 10);
        this.ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS log (what TEXT)');
        this.ctx.storage.sql.exec("INSERT INTO log VALUES ('moved 10')");
        // the transaction stays open until the test lets this answer
        await (await fetch('${gateUrl}')).text();
        const b = (await txn.get('b')) ?? 0;
        await txn.put('b', b + 10);
      });
    }
    const log = this.ctx.storage.sql.exec('SELECT count(*) AS n FROM log').one().n;
    return Response.json({ a: await this.ctx.storage.get('a'), b: await this.ctx.storage.get('b'), log });
  }
}
export default { fetch(request, env) { return env.OBJ.getByName('vault').fetch(request.url); } };`;

const HOG = `
export class Hog {
  constructor(ctx) { this.sql = ctx.storage.sql; }
  fetch() { return Response.json(this.sql.exec('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c').one()); }
}
export default {
  async fetch(request, env) {
    try { return await env.OBJ.getByName('hog').fetch(request.url); }
    catch (e) { return new Response('caught: ' + e.message, { status: 502 }); }
  },
};`;

beforeAll(async () => {
  gate = createServer((_req, res) => {
    held.push(res);
    arrived();
  });
  await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
  // One storage process: every object's storage on it, the neighbour's and the attacker's.
  cinder = await startCinder({ durableObjects: { storageProcesses: 1 }, allowPrivateFetch: true });
  // (its first events use up to ~27 ms of CPU here, of the 50 ms default: room for a slower CI)
  await deploy('bank', BANK(`http://127.0.0.1:${(gate.address() as AddressInfo).port}/`), 'Bank', { cpu_ms: 1000 });
  await deploy('hog', HOG, 'Hog', { cpu_ms: 300 });
});

afterAll(async () => {
  for (const res of held) res.end();
  gate?.close();
  await cinder?.close({ cleanup: true });
});

async function get(host: string, path: string) {
  const res = await undiciRequest(`${cinder.server.url}${path}`, { headers: { host } });
  return { status: res.statusCode, text: await res.body.text() };
}

describe("a neighbour's Durable Object transaction when an attacker's storage call is killed", () => {
  it('is redone in the fresh storage process and commits whole, twice over', async () => {
    for (const round of [1, 2]) {
      const inside = new Promise<void>((resolve) => (arrived = resolve));
      const transfer = get('bank.example.com', '/transfer');
      // The bank is inside its transaction, with writes done, waiting on the gate.
      await inside;
      const hog = await get('hog.example.com', '/');
      expect(hog.status).toBe(502);
      expect(hog.text).toMatch(/^caught: .*CPU/);
      // The storage process was killed under the bank's open transaction; now let it go on.
      held.shift()!.end('go');
      const out = await transfer;
      expect(out.status, out.text).toBe(200);
      expect(JSON.parse(out.text)).toEqual({ a: 100 - 10 * round, b: 10 * round, log: round });
    }
  });
});
