// `cinder kv list|get|put|delete` against a data directory (SQLite) and against Redis, and a
// value put by the CLI read by a worker on a server using the same file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { createKVService, installKV } from '../../bindings/kv/index.js';
import { registerKVCommands } from '../../src/app/cli/kv.js';
import { startTestServer } from '../helpers/server.js';
import { findRedisServer, startRedis, type RedisServer } from './fixtures.js';

interface Run {
  stdout: Buffer;
  stderr: string;
  exitCode: number;
}

/** Run `cinder kv ...args` in-process, with its own stdio. */
async function cinderKV(args: string[], stdinText?: string): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean };
  if (stdinText === undefined) stdin.isTTY = true;
  else stdin.end(stdinText);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c) => out.push(c));
  stderr.on('data', (c) => err.push(c));
  const program = new Command().exitOverride();
  registerKVCommands(program, { stdout, stderr, stdin });
  process.exitCode = 0;
  await program.parseAsync(['kv', ...args], { from: 'user' });
  const exitCode = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(), exitCode };
}

describe('cinder kv (SQLite under --data)', () => {
  let dir: string;
  let data: string[];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cinder-kv-cli-'));
    data = ['--data', join(dir, 'data')];
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => {
    process.exitCode = 0;
  });

  it('puts from an argument, a file and stdin, and gets them back', async () => {
    await cinderKV(['put', 'site', 'greeting', 'hello there', ...data]);
    const file = join(dir, 'blob.bin');
    writeFileSync(file, Buffer.from([0, 1, 2, 255]));
    await cinderKV(['put', 'site', 'blob', '--path', file, ...data]);
    await cinderKV(['put', 'site', 'piped', ...data], 'from stdin');
    expect((await cinderKV(['get', 'site', 'greeting', ...data])).stdout.toString()).toBe('hello there');
    expect([...(await cinderKV(['get', 'site', 'blob', ...data])).stdout]).toEqual([0, 1, 2, 255]);
    expect((await cinderKV(['get', 'site', 'piped', ...data])).stdout.toString()).toBe('from stdin');
  });

  it('stores metadata and TTL, shows them with --metadata and list', async () => {
    await cinderKV(['put', 'site', 'tagged', 'v', '--metadata', '{"tag":"x"}', '--ttl', '3600', ...data]);
    const shown = JSON.parse((await cinderKV(['get', 'site', 'tagged', '--metadata', ...data])).stdout.toString());
    expect(shown).toMatchObject({ value: 'v', metadata: { tag: 'x' } });
    expect(shown.expiration).toBeGreaterThan(Date.now() / 1000 + 3500);
    const listed = JSON.parse((await cinderKV(['list', 'site', '--prefix', 'tag', ...data])).stdout.toString());
    expect(listed).toEqual({ keys: [{ name: 'tagged', expiration: shown.expiration, metadata: { tag: 'x' } }], list_complete: true });
  });

  it('lists every page with --all, deletes, and reports errors with exit code 1', async () => {
    for (let i = 0; i < 5; i++) await cinderKV(['put', 'paged', `k${i}`, 'v', ...data]);
    const page = JSON.parse((await cinderKV(['list', 'paged', '--limit', '2', ...data])).stdout.toString());
    expect(page.keys).toHaveLength(2);
    expect(page.list_complete).toBe(false);
    const all = JSON.parse((await cinderKV(['list', 'paged', '--limit', '2', '--all', ...data])).stdout.toString());
    expect(all.keys.map((k: { name: string }) => k.name)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
    await cinderKV(['delete', 'paged', 'k0', ...data]);
    const missing = await cinderKV(['get', 'paged', 'k0', ...data]);
    expect([missing.exitCode, missing.stderr]).toEqual([1, 'cinder kv: key not found: k0\n']);
    const badTtl = await cinderKV(['put', 'paged', 'k', 'v', '--ttl', '5', ...data]);
    expect([badTtl.exitCode, badTtl.stderr]).toEqual([1, 'cinder kv: Invalid expiration_ttl of 5. Expiration TTL must be at least 60.\n']);
    await expect(cinderKV(['put', 'paged', 'k', 'v', '--metadata', '{oops', ...data])).rejects.toThrow('--metadata must be JSON');
  });

  it('writes what a worker on a server using the same data directory reads', async () => {
    const kv = createKVService({ data: join(dir, 'data') }, { sweepIntervalMs: 0 });
    const server = await startTestServer({
      app: { code: `export default { async fetch(req, env) { return new Response(String(await env.KV.get('motd'))); } }`, bindings: { KV: { type: 'kv_namespace', namespace_id: 'site' } } },
    });
    installKV(server.runtime, kv);
    try {
      await cinderKV(['put', 'site', 'motd', 'set by the CLI', ...data]);
      expect((await server.request('app', '/')).text).toBe('set by the CLI');
    } finally {
      await server.close();
      await kv.close();
    }
  });
});

const redisBinary = findRedisServer();

describe.skipIf(!redisBinary)('cinder kv --redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis(redisBinary!);
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('reads and writes namespaces in Redis', async () => {
    await cinderKV(['put', 'r', 'k', 'in redis', '--redis', redis.url]);
    expect((await cinderKV(['get', 'r', 'k', '--redis', redis.url])).stdout.toString()).toBe('in redis');
    expect(JSON.parse((await cinderKV(['list', 'r', '--redis', redis.url])).stdout.toString()).keys).toEqual([{ name: 'k' }]);
    await cinderKV(['delete', 'r', 'k', '--redis', redis.url]);
    expect((await cinderKV(['get', 'r', 'k', '--redis', redis.url])).exitCode).toBe(1);
  });
});
