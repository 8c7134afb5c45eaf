// The `cinder` command. Loaded through bin/cinder.js, which guarantees --no-node-snapshot.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, exitAfterLog } from '../../observability/logger.js';
import { registerControlCommands } from './commands.js';
import { registerObservabilityCommands } from './observability.js';
import { registerKVCommands } from './kv.js';
import { registerD1Commands } from './d1.js';
import { registerR2Commands } from './r2.js';
import { devPlan } from './dev-project.js';
import { registerSecretCommands } from './secrets.js';
import { registerAccountCommands } from './accounts.js';
import { versionLine } from './version.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number (0-65535)');
  return n;
}

/** A directory of local state that git should not see (wrangler's .wrangler is in templates' .gitignore). */
function ignoreInGit(dir: string): void {
  const file = join(dir, '.gitignore');
  if (existsSync(file)) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, '# local state of `cinder dev`\n*\n');
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const program = new Command();
program.name('cinder').description('An edge JavaScript runtime: workers in V8 isolates').version(versionLine(), '-V, --version', "print Cinder's, Node's, V8's and isolated-vm's versions");

program
  .command('dev')
  .description('serve workers locally, reloading on change: the wrangler project here, or the given configs, projects and worker files')
  .argument('[paths...]', 'worker files (.js/.ts), directories of them, or wrangler.toml/.json/.jsonc projects (default: the project in this directory)')
  .option('-c, --config <file>', 'a wrangler config to serve (repeatable: the workers reach each other through service bindings)', collect, [])
  .option('-e, --env <env>', 'use the [env.<env>] sections of the configs (and .dev.vars.<env>)')
  .option('--var <KEY:VALUE>', 'set env.KEY to VALUE in the (first) worker, over its vars (repeatable)', collect, [])
  .option('-p, --port <port>', 'port to listen on', port, 8787)
  .option('--host <host>', 'address to bind', '127.0.0.1')
  .option('--default <worker>', 'worker that answers hosts that name no worker')
  .option('--kv <NAME>', 'bind KV namespace NAME as env.NAME in every worker (repeatable)', collect, [])
  .option('--persist-to <dir>', 'keep local state (KV) in this directory (default: .cinder/state in the project directory)')
  .option('--no-persist', 'keep local state in memory only: it is gone when cinder dev stops')
  .addOption(new Option('--log-format <format>', 'pretty lines for people, or JSON (default: pretty in a terminal, JSON when piped)').choices(['pretty', 'json']))
  .option('--no-server-timing', 'omit the Server-Timing header')
  .option('--inspect [address]', 'expose the workers to Chrome DevTools (chrome://inspect) on [host:]port, default 127.0.0.1:9229')
  .option('--no-supervisor', 'serve in this process, unsupervised (debugging): a crash or hang is not restarted')
  .action(async (paths: string[], opts) => {
    const { DevLogStream } = await import('../dev-log.js');
    const tty = process.stdout.isTTY === true;
    const color = tty && !process.env.NO_COLOR;
    const logStream = new DevLogStream({ format: opts.logFormat ?? (tty ? 'pretty' : 'json'), color });
    const logger = createLogger({ destination: logStream });
    const { superviseThisCommand } = await import('../supervisor.js');
    const { supervisorState, reportToSupervisor } = await import('../supervised.js');
    const supervised = supervisorState();
    // a serving child: isolates made from here on keep their heap shape (serving-flags.ts)
    if (supervised) await (await import('../serving-flags.js')).applyIsolateHeapFlags();
    // Read the projects before anything starts: a config error ends the command with its message.
    const plan = devPlan({ paths, configs: opts.config, env: opts.env, vars: opts.var, cwd: process.cwd() });
    // By default this process only supervises; the one that serves is its child.
    if (opts.supervisor !== false && !supervised) {
      superviseThisCommand(logger);
      return;
    }
    // Loaded here, not at the top: other commands need not load the runtime.
    const { startDev } = await import('../dev.js');
    const { parseInspectOption } = await import('../inspector.js');
    const inspect = parseInspectOption(opts.inspect) ?? undefined;
    const persistTo = opts.persist === false ? undefined : resolve(opts.persistTo ?? join(plan.projectDir, '.cinder', 'state'));
    // The default state directory sits in the project: keep it out of the project's commits.
    if (persistTo && !opts.persistTo) ignoreInGit(join(plan.projectDir, '.cinder'));
    const dev = await startDev({
      workers: plan.workers,
      paths: plan.paths,
      bindings: plan.bindings,
      port: opts.port,
      host: opts.host,
      defaultWorker: opts.default ?? plan.defaultWorker,
      kvNamespaces: opts.kv,
      persistTo,
      watch: true,
      serverTiming: opts.serverTiming,
      inspect,
      logger,
      color: process.stderr.isTTY === true && !process.env.NO_COLOR,
      onSourceMaps: (maps) => (logStream.mapStack = (worker, text) => maps.map(worker, text)),
    });
    logger.info({ url: dev.url, workers: dev.runtime.workers(), persistTo: persistTo ?? null }, `cinder dev listening on ${dev.url}`);
    process.stderr.write(`cinder dev: ${dev.runtime.workers().join(', ') || '(no worker built yet)'} on ${dev.url}\n`);
    if (dev.inspector) process.stderr.write(`cinder dev: inspector on ${dev.inspector.address}: open chrome://inspect, or ${dev.inspector.devtoolsUrl(dev.runtime.workers()[0])}\n`);
    reportToSupervisor(dev.runtime, logger, supervised);
    const stop = () => dev.close().then(() => exitAfterLog(logger, 0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

// serve, deploy, workers
registerControlCommands(program);
// accounts list|create, tokens list|create|revoke
registerAccountCommands(program);
// usage, tail, log-level
registerObservabilityCommands(program);
// kv list|get|put|delete
registerKVCommands(program);
// d1 execute|migrations list|apply|list
registerD1Commands(program);
// r2 object get|put|delete|list
registerR2Commands(program);
// secret put|list|delete
registerSecretCommands(program);

// `cinder deploy | head -1`: the reader went away; the rest of the output has nowhere to go, and
// that is no error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

// A bare `--inspect` takes no value (as node's): it must not swallow the worker path after it.
program.parseAsync(process.argv.map((arg) => (arg === '--inspect' ? '--inspect=' : arg))).catch((error) => {
  process.stderr.write(`cinder: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
