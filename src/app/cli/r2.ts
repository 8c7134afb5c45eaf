// `cinder r2 object get|put|delete BUCKET/KEY` and `cinder r2 object list BUCKET`, as wrangler's
// r2 commands: on the server's buckets through its admin API (--url/--token), or with --local on
// the store `cinder dev` uses (<project>/.cinder/r2, or --data).
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import { R2Error, R2Store } from '../../../bindings/r2/index.js';
import { DEFAULT_ACCOUNT } from '../../model/accounts.js';
import { AdminClient, AdminError, DEFAULT_ADMIN_URL } from './client.js';
import { findConfig } from './wrangler.js';
import { table } from './commands.js';

interface Flags {
  local?: boolean;
  data?: string;
  url: string;
  token?: string;
  file?: string;
  pipe?: boolean;
  contentType?: string;
  prefix?: string;
  delimiter?: string;
}

function options(command: Command): Command {
  return command
    .option('--local', "the local store `cinder dev` uses, not the server's")
    .option('--data <dir>', 'with --local: the state directory (default: .cinder/state beside the wrangler config, else ./.cinder/state, where `cinder dev` keeps it)')
    .addOption(new Option('--url <url>', 'admin API of `cinder serve`').env('CINDER_URL').default(DEFAULT_ADMIN_URL))
    .addOption(new Option('--token <token>', 'admin token, or an account token').env('CINDER_TOKEN'));
}

function split(path: string): { bucket: string; key: string } {
  const at = path.indexOf('/');
  if (at <= 0 || at === path.length - 1) throw new R2Error('object', `give the object as BUCKET/KEY (got "${path}")`, 10020);
  return { bucket: path.slice(0, at), key: path.slice(at + 1) };
}

function localStore(flags: Flags): R2Store {
  const config = findConfig(process.cwd());
  return new R2Store({ root: join(resolve(flags.data ?? (config ? join(dirname(config), '.cinder', 'state') : join('.cinder', 'state'))), 'r2') });
}

async function remote(flags: Flags, method: string, path: string, body?: BodyInit, headers: Record<string, string> = {}): Promise<Response> {
  const token = flags.token ?? process.env.CINDER_ADMIN_TOKEN;
  if (!token) throw new AdminError('no admin token: pass --token or set CINDER_TOKEN');
  const response = await fetch(`${flags.url.replace(/\/+$/, '')}/r2${path}`, { method, body, headers: { ...headers, authorization: `Bearer ${token}` }, duplex: 'half' } as RequestInit);
  if (!response.ok) {
    const text = await response.text();
    let message = `${response.status} ${response.statusText}`;
    try {
      message = JSON.parse(text).error ?? message;
    } catch {
      // not JSON
    }
    throw new AdminError(message, response.status);
  }
  return response;
}

const objectPath = (bucket: string, key: string) => `/${encodeURIComponent(bucket)}/objects/${key.split('/').map(encodeURIComponent).join('/')}`;

export function registerR2Commands(program: Command, io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = { stdout: process.stdout, stderr: process.stderr }): Command {
  const r2 = program.command('r2').description("R2 objects (the server's, or --local)");
  const object = r2.command('object').description('get, put, delete and list objects');

  async function act(run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (error) {
      if (!(error instanceof R2Error || error instanceof AdminError)) throw error;
      io.stderr.write(`cinder r2: ${error.message}\n`);
      process.exitCode = 1;
    }
  }

  options(object.command('get').argument('<object>', 'BUCKET/KEY'))
    .option('--file <file>', 'write the object here (default: stdout)')
    .action((path: string, flags: Flags) =>
      act(async () => {
        const { bucket, key } = split(path);
        const out = flags.file ? createWriteStream(flags.file) : io.stdout;
        if (flags.local) {
          const store = localStore(flags);
          try {
            const found = store.get({ account: DEFAULT_ACCOUNT, bucket }, key);
            if (!found?.body) throw new R2Error('get', `no object ${key} in ${bucket}`, 10007);
            await pipeline(Readable.from(found.body), out, { end: !!flags.file });
          } finally {
            store.close();
          }
          return;
        }
        const response = await remote(flags, 'GET', objectPath(bucket, key));
        await pipeline(Readable.fromWeb(response.body as never), out, { end: !!flags.file });
      }),
    );

  options(object.command('put').argument('<object>', 'BUCKET/KEY'))
    .option('--file <file>', 'the bytes to store')
    .option('--pipe', 'read the bytes from stdin')
    .option('--content-type <type>', 'Content-Type to keep with the object')
    .action((path: string, flags: Flags) =>
      act(async () => {
        const { bucket, key } = split(path);
        if (!flags.file === !flags.pipe) throw new R2Error('put', 'give the bytes with --file path or --pipe (one of them)', 10020);
        if (flags.file && !existsSync(flags.file)) throw new R2Error('put', `no file at ${flags.file}`, 10020);
        const source = flags.file ? createReadStream(flags.file) : process.stdin;
        let etag: string;
        if (flags.local) {
          const store = localStore(flags);
          try {
            etag = (await store.put({ account: DEFAULT_ACCOUNT, bucket }, key, source, flags.contentType ? { httpMetadata: { contentType: flags.contentType } } : {}))!.etag;
          } finally {
            store.close();
          }
        } else {
          const response = await remote(flags, 'PUT', objectPath(bucket, key), Readable.toWeb(source) as never, flags.contentType ? { 'content-type': flags.contentType } : {});
          etag = ((await response.json()) as { etag: string }).etag;
        }
        io.stderr.write(`cinder r2: stored ${bucket}/${key} (etag ${etag})\n`);
      }),
    );

  options(object.command('delete').argument('<object>', 'BUCKET/KEY')).action((path: string, flags: Flags) =>
    act(async () => {
      const { bucket, key } = split(path);
      if (flags.local) {
        const store = localStore(flags);
        store.delete({ account: DEFAULT_ACCOUNT, bucket }, [key]);
        store.close();
      } else {
        await remote(flags, 'DELETE', objectPath(bucket, key));
      }
      io.stderr.write(`cinder r2: deleted ${bucket}/${key}\n`);
    }),
  );

  options(object.command('list').argument('<bucket>', 'bucket name'))
    .option('--prefix <prefix>', 'only keys starting with this')
    .option('--delimiter <d>', 'roll keys up to this delimiter')
    .action((bucket: string, flags: Flags) =>
      act(async () => {
        let listed: { objects: { key: string; size: number; etag: string }[]; delimitedPrefixes: string[] };
        if (flags.local) {
          const store = localStore(flags);
          try {
            listed = store.list({ account: DEFAULT_ACCOUNT, bucket }, { prefix: flags.prefix, delimiter: flags.delimiter });
          } finally {
            store.close();
          }
        } else {
          const query = new URLSearchParams();
          if (flags.prefix) query.set('prefix', flags.prefix);
          if (flags.delimiter) query.set('delimiter', flags.delimiter);
          listed = (await (await remote(flags, 'GET', `/${encodeURIComponent(bucket)}/objects?${query}`)).json()) as typeof listed;
        }
        const rows = [...listed.delimitedPrefixes.map((p) => [p, '', '']), ...listed.objects.map((o) => [o.key, String(o.size), o.etag])];
        io.stdout.write((rows.length ? table(['KEY', 'SIZE', 'ETAG'], rows) : 'no objects') + '\n');
      }),
    );
  return r2;
}
