// `cinder kv list|get|put|delete`: read and write KV namespaces where a server keeps them (the
// SQLite file under --data, or Redis with --redis), through the same KVService the runtime uses,
// so limits and errors are the ones workers see. Safe while a server runs: SQLite in WAL mode
// takes concurrent writers, and the server sees a change once its cached read is older than the
// reader's cacheTtl (docs/kv.md).
import { prepareRedis } from '../redis-setup.js';
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { createKVService, KVError, type KVService } from '../../../bindings/kv/index.js';
import { DEFAULT_DATA_DIR } from '../../store/index.js';

export interface KVCommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

interface StorageFlags {
  data: string;
  redis?: string;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('expected an integer');
  return n;
}

function storageOptions(command: Command): Command {
  return command
    .option('--data <dir>', 'data directory of the server (SQLite KV file inside)', DEFAULT_DATA_DIR)
    .option('--redis <url>', 'use the KV namespaces in this Redis (redis://host:port, or redis+cluster://host:port,... for a Redis Cluster) instead of --data');
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

/** Adds `kv` and its subcommands to `program`. */
export function registerKVCommands(program: Command, io: KVCommandIO = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): Command {
  const kv = program.command('kv').description('read and write KV namespaces (SQLite under --data, or --redis)');

  // One short-lived service per command: no read cache (nothing to reuse) and no sweeper.
  async function withService(flags: StorageFlags, run: (service: KVService) => Promise<void>): Promise<void> {
    const redis = flags.redis ? await prepareRedis(flags.redis) : undefined;
    const service = createKVService(redis ? { redis } : { data: flags.data }, { cache: false, sweepIntervalMs: 0 });
    try {
      await run(service);
    } catch (error) {
      if (!(error instanceof KVError)) throw error;
      io.stderr.write(`cinder kv: ${error.detail}\n`);
      process.exitCode = 1;
    } finally {
      await service.close();
    }
  }

  storageOptions(
    kv
      .command('list')
      .description('list keys (JSON), in byte order')
      .argument('<namespace>', 'namespace id')
      .option('--prefix <prefix>', 'only keys starting with this')
      .option('--limit <n>', 'keys per page (at most 1000)', integer)
      .option('--cursor <cursor>', 'continue from a previous page')
      .option('--all', 'follow cursors and print every key'),
  ).action(async (namespace: string, opts: StorageFlags & { prefix?: string; limit?: number; cursor?: string; all?: boolean }) => {
    await withService(opts, async (service) => {
      let page = await service.list(namespace, { prefix: opts.prefix, limit: opts.limit, cursor: opts.cursor });
      if (opts.all) {
        const keys = [...page.keys];
        while (!page.list_complete) {
          page = await service.list(namespace, { prefix: opts.prefix, limit: opts.limit, cursor: page.cursor });
          keys.push(...page.keys);
        }
        page = { keys, list_complete: true };
      }
      const keys = page.keys.map((key) => (key.metadata === undefined ? key : { ...key, metadata: JSON.parse(key.metadata) }));
      io.stdout.write(JSON.stringify({ ...page, keys }, null, 2) + '\n');
    });
  });

  storageOptions(
    kv
      .command('get')
      .description('print a value (raw bytes) to stdout')
      .argument('<namespace>', 'namespace id')
      .argument('<key>', 'key')
      .option('--metadata', 'print {value, metadata, expiration} as JSON instead (value as text)'),
  ).action(async (namespace: string, key: string, opts: StorageFlags & { metadata?: boolean }) => {
    await withService(opts, async (service) => {
      const read = await service.get(namespace, key, { fresh: true });
      if (!read) {
        io.stderr.write(`cinder kv: key not found: ${key}\n`);
        process.exitCode = 1;
        return;
      }
      if (opts.metadata) {
        const view = { value: read.value.toString('utf8'), metadata: read.metadata === null ? null : JSON.parse(read.metadata), expiration: read.expiration };
        io.stdout.write(JSON.stringify(view, null, 2) + '\n');
      } else {
        io.stdout.write(read.value);
      }
    });
  });

  storageOptions(
    kv
      .command('put')
      .description('store a value: the argument, --path FILE, or stdin')
      .argument('<namespace>', 'namespace id')
      .argument('<key>', 'key')
      .argument('[value]', 'the value as text')
      .option('--path <file>', 'read the value from a file')
      .option('--ttl <seconds>', 'expire this many seconds from now (at least 60)', integer)
      .option('--expiration <epoch>', 'expire at this time (seconds since the epoch)', integer)
      .option('--metadata <json>', 'metadata to store with the value (JSON, at most 1024 bytes)'),
  ).action(async (namespace: string, key: string, value: string | undefined, opts: StorageFlags & { path?: string; ttl?: number; expiration?: number; metadata?: string }) => {
    if (value !== undefined && opts.path) throw new InvalidArgumentError('give the value or --path, not both');
    let bytes: string | Buffer;
    if (value !== undefined) bytes = value;
    else if (opts.path) bytes = readFileSync(opts.path);
    else if (!io.stdin.isTTY) bytes = await readAll(io.stdin);
    else throw new InvalidArgumentError('no value: give it as an argument, with --path, or on stdin');
    if (opts.metadata !== undefined) {
      try {
        JSON.parse(opts.metadata);
      } catch {
        throw new InvalidArgumentError('--metadata must be JSON');
      }
    }
    await withService(opts, (service) => service.put(namespace, key, bytes, { expirationTtl: opts.ttl, expiration: opts.expiration, metadata: opts.metadata }));
  });

  storageOptions(
    kv.command('delete').description('delete a key').argument('<namespace>', 'namespace id').argument('<key>', 'key'),
  ).action(async (namespace: string, key: string, opts: StorageFlags) => {
    await withService(opts, (service) => service.delete(namespace, key));
  });

  return kv;
}
