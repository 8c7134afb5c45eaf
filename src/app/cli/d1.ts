// `cinder d1 ...`: run SQL and migrations against D1 databases, as wrangler's d1 commands do.
//   cinder d1 list                                  the account's databases (server)
//   cinder d1 execute NAME --command SQL | --file F  statements in one transaction; rows printed
//   cinder d1 migrations list|apply NAME            wrangler's migrations_dir and d1_migrations
// NAME is a d1_databases entry of the wrangler config here (its binding or database_name), or a
// database id. With --local the database is the file `cinder dev` uses (<project>/.cinder, or
// --data); otherwise the server's, through its admin API (--url/--token, CINDER_URL/CINDER_TOKEN).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { applyMigrations, D1Error, D1Service, pendingMigrations, readMigrations, splitStatements, type MigrationRunner } from '../../../bindings/d1/index.js';
import type { WireD1Value } from '../../../bindings/d1/protocol.js';
import { DEFAULT_ACCOUNT } from '../../model/accounts.js';
import { AdminClient, AdminError, DEFAULT_ADMIN_URL } from './client.js';
import { ConfigError, findConfig, readConfig, type D1DatabaseConfig } from './wrangler.js';
import { table } from './commands.js';

export interface D1CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

interface Flags {
  local?: boolean;
  data?: string;
  config?: string;
  env?: string;
  url: string;
  token?: string;
  json?: boolean;
}

/** Where a command acts: the database, how statements run there, and how migrations apply. */
interface Target {
  id: string;
  config?: D1DatabaseConfig;
  query: MigrationRunner;
  applyRemote?: (migrations: { name: string; sql: string }[], table: string, dryRun: boolean) => Promise<string[]>;
  close(): void;
}

function options(command: Command): Command {
  return command
    .option('--local', 'the local database `cinder dev` uses, not the server\'s')
    .option('--data <dir>', 'with --local: the state directory (default: .cinder/state beside the wrangler config, else ./.cinder/state, where `cinder dev` keeps it)')
    .option('-c, --config <file>', 'wrangler config (default: wrangler.toml/.jsonc/.json here)')
    .option('-e, --env <name>', 'use the [env.NAME] section of the config')
    .addOption(new Option('--url <url>', 'admin API of `cinder serve`').env('CINDER_URL').default(DEFAULT_ADMIN_URL))
    .addOption(new Option('--token <token>', 'admin token, or an account token').env('CINDER_TOKEN'))
    .option('--json', 'print JSON');
}

function configFile(flags: Flags): string | null {
  if (flags.config) {
    if (!existsSync(flags.config)) throw new ConfigError(`no config file at ${flags.config}`);
    return resolve(flags.config);
  }
  return findConfig(process.cwd());
}

function target(name: string, flags: Flags): Target {
  const file = configFile(flags);
  const config = file ? readConfig(file, flags.env).d1Databases.find((d) => d.binding === name || d.databaseName === name || d.databaseId === name) : undefined;
  const id = config?.databaseId ?? name;
  if (flags.local) {
    const dataDir = resolve(flags.data ?? (file ? join(dirname(file), '.cinder', 'state') : join('.cinder', 'state')));
    const service = new D1Service({ dataDir, processes: 1 });
    const ref = { account: DEFAULT_ACCOUNT, id };
    return {
      id,
      config,
      query: async (statements) => (await service.query(ref, statements)).results.map((r) => r.rows.map((row) => Object.fromEntries(row.map((cell, i) => [r.columns[i], cellForPrint(cell)])))),
      close: () => service.close(),
    };
  }
  const client = new AdminClient(flags.url, flags.token ?? process.env.CINDER_ADMIN_TOKEN);
  const path = `/d1/${encodeURIComponent(id)}`;
  return {
    id,
    config,
    query: async (statements) => {
      const body = JSON.stringify({ statements: statements.map((s) => ({ sql: s.sql, params: s.params.map(cellForPrint) })) });
      const answer = await client.request<{ results: { results: Record<string, unknown>[] }[] }>('POST', `${path}/query`, body, { 'content-type': 'application/json' });
      return answer.results.map((r) => r.results);
    },
    applyRemote: async (migrations, tableName, dryRun) => {
      const answer = await client.request<{ applied?: string[]; pending?: string[] }>('POST', `${path}/migrations`, JSON.stringify({ migrations, table: tableName, dry_run: dryRun }), { 'content-type': 'application/json' });
      return (dryRun ? answer.pending : answer.applied) ?? [];
    },
    close: () => {},
  };
}

function cellForPrint(cell: WireD1Value | unknown): unknown {
  return cell instanceof ArrayBuffer ? Array.from(new Uint8Array(cell)) : cell;
}

function show(value: unknown): string {
  if (value === null) return 'null';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

export function registerD1Commands(program: Command, io: D1CommandIO = { stdout: process.stdout, stderr: process.stderr }): Command {
  const d1 = program.command('d1').description('run SQL and migrations against D1 databases (the server\'s, or --local)');
  const out = (line: string) => io.stdout.write(line + '\n');

  async function act(name: string, flags: Flags, body: (t: Target) => Promise<void>): Promise<void> {
    let t: Target | undefined;
    try {
      t = target(name, flags);
      await body(t);
    } catch (error) {
      if (!(error instanceof D1Error || error instanceof AdminError || error instanceof ConfigError || (error as Error).message?.startsWith('migration') || (error as Error).message?.startsWith('no migrations'))) throw error;
      const message = error instanceof D1Error ? `D1_ERROR: ${error.message}` : (error as Error).message;
      io.stderr.write(`cinder d1: ${message}\n`);
      process.exitCode = 1;
    } finally {
      t?.close();
    }
  }

  options(d1.command('execute').argument('<name>', 'database: a d1_databases binding or database_name, or a database id'))
    .description('run SQL (--command or --file) in one transaction and print what it answers')
    .option('--command <sql>', 'the SQL to run')
    .option('--file <file>', 'a .sql file to run')
    .action(async (name: string, flags: Flags & { command?: string; file?: string }) => {
      await act(name, flags, async (t) => {
        if (!flags.command === !flags.file) throw new ConfigError('give the SQL with --command "..." or --file path.sql (one of them)');
        const text = flags.command ?? readFileSync(flags.file!, 'utf8');
        const statements = splitStatements(text).map((piece) => ({ sql: piece.sql, params: [] as WireD1Value[] }));
        if (!statements.length) throw new ConfigError('no SQL statements to run');
        const results = await t.query(statements);
        if (flags.json) {
          out(JSON.stringify(results.map((rows) => ({ results: rows, success: true }))));
          return;
        }
        results.forEach((rows, i) => {
          if (!rows.length) return;
          const columns = Object.keys(rows[0]);
          if (results.length > 1) out(`-- ${statements[i].sql.split('\n')[0]}`);
          out(table(columns, rows.map((row) => columns.map((c) => show(row[c])))));
        });
        io.stderr.write(`cinder d1: ran ${statements.length} statement${statements.length === 1 ? '' : 's'} on ${t.id}${flags.local ? ' (local)' : ''}\n`);
      });
    });

  const migrations = d1.command('migrations').description('wrangler-style migrations (migrations_dir, d1_migrations)');
  for (const [verb, describe] of [
    ['list', 'list migrations not yet applied'],
    ['apply', 'apply every migration not yet applied, each in one transaction'],
  ] as const) {
    options(migrations.command(verb).argument('<name>', 'database: a d1_databases binding or database_name'))
      .description(describe)
      .action(async (name: string, flags: Flags) => {
        await act(name, flags, async (t) => {
          const dir = t.config?.migrationsDir ?? resolve('migrations');
          const tableName = t.config?.migrationsTable ?? 'd1_migrations';
          let names: string[];
          if (t.applyRemote) {
            names = await t.applyRemote(readMigrations(dir), tableName, verb === 'list');
          } else {
            names = verb === 'list' ? (await pendingMigrations(t.query, dir, tableName)).map((m) => m.name) : await applyMigrations(t.query, dir, tableName);
          }
          if (flags.json) out(JSON.stringify(verb === 'list' ? { pending: names } : { applied: names }));
          else if (!names.length) out(`no migrations to apply on ${t.id}${verb === 'apply' ? '; it is up to date' : ''}`);
          else for (const applied of names) out(verb === 'list' ? `pending  ${applied}` : `applied  ${applied}`);
        });
      });
  }

  options(d1.command('list'))
    .description('the databases of your account on the server (or in the local state with --local)')
    .action(async (flags: Flags) => {
      let databases: { id: string; bytes: number }[];
      if (flags.local) {
        const file = configFile(flags);
        const service = new D1Service({ dataDir: resolve(flags.data ?? (file ? join(dirname(file), '.cinder', 'state') : join('.cinder', 'state'))) });
        databases = service.list(DEFAULT_ACCOUNT);
        service.close();
      } else {
        try {
          databases = (await new AdminClient(flags.url, flags.token ?? process.env.CINDER_ADMIN_TOKEN).request<{ databases: { id: string; bytes: number }[] }>('GET', '/d1')).databases;
        } catch (error) {
          if (!(error instanceof AdminError)) throw error;
          io.stderr.write(`cinder d1: ${error.message}\n`);
          process.exitCode = 1;
          return;
        }
      }
      if (flags.json) out(JSON.stringify({ databases }));
      else out(databases.length ? table(['ID', 'BYTES'], databases.map((d) => [d.id, String(d.bytes)])) : 'no D1 databases');
    });
  return d1;
}
