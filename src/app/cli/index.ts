// The `cinder` command. Loaded through bin/cinder.js, which guarantees --no-node-snapshot.
import { Command, InvalidArgumentError } from 'commander';
import { createLogger } from '../../observability/logger.js';
import { registerControlCommands } from './commands.js';
import { registerObservabilityCommands } from './observability.js';
import { registerKVCommands } from './kv.js';
import { devProject } from './wrangler.js';
import { registerAccountCommands } from './accounts.js';
import { versionLine } from './version.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number (0-65535)');
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const program = new Command();
program.name('cinder').description('An edge JavaScript runtime: workers in V8 isolates').version(versionLine(), '-V, --version', "print Cinder's, Node's, V8's and isolated-vm's versions");

program
  .command('dev')
  .description('serve worker files locally, reloading on change')
  .argument('<paths...>', 'worker files (.js/.ts), directories of them, or a wrangler.toml/.json/.jsonc project')
  .option('-p, --port <port>', 'port to listen on', port, 8787)
  .option('--host <host>', 'address to bind', '127.0.0.1')
  .option('--default <worker>', 'worker that answers hosts that name no worker')
  .option('--kv <NAME>', 'bind an in-memory KV namespace as env.NAME (repeatable)', collect, [])
  .option('--no-server-timing', 'omit the Server-Timing header')
  .option('--inspect [address]', 'expose the workers to Chrome DevTools (chrome://inspect) on [host:]port, default 127.0.0.1:9229')
  .option('--no-supervisor', 'serve in this process, unsupervised (debugging): a crash or hang is not restarted')
  .action(async (paths: string[], opts) => {
    const logger = createLogger();
    const { superviseThisCommand } = await import('../supervisor.js');
    const { supervisorState, reportToSupervisor } = await import('../supervised.js');
    const supervised = supervisorState();
    // By default this process only supervises; the one that serves is its child.
    if (opts.supervisor !== false && !supervised) return superviseThisCommand(logger);
    // Loaded here, not at the top: other commands need not load the runtime.
    const { startDev, workerNameFromFile } = await import('../dev.js');
    const { parseInspectOption } = await import('../inspector.js');
    const inspect = parseInspectOption(opts.inspect) ?? undefined;
    // A wrangler.toml/.json/.jsonc (or a directory with one) serves that project's main, vars and limits.
    const project = devProject(paths, workerNameFromFile);
    const dev = await startDev({ paths: project.paths, bindings: project.bindings, limits: project.limits, bundle: project.bundle, build: project.config?.build, compatibilityDate: project.config?.compatibilityDate, port: opts.port, host: opts.host, defaultWorker: opts.default ?? project.defaultWorker, kvNamespaces: opts.kv, watch: true, serverTiming: opts.serverTiming, inspect, logger });
    logger.info({ url: dev.url, workers: dev.runtime.workers() }, `cinder dev listening on ${dev.url}`);
    process.stderr.write(`cinder dev: ${dev.runtime.workers().join(', ')} on ${dev.url}\n`);
    if (dev.inspector) process.stderr.write(`cinder dev: inspector on ${dev.inspector.address}: open chrome://inspect, or ${dev.inspector.devtoolsUrl(dev.runtime.workers()[0])}\n`);
    reportToSupervisor(dev.runtime, logger, supervised);
    const stop = () => dev.close().then(() => process.exit(0));
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

// A bare `--inspect` takes no value (as node's): it must not swallow the worker path after it.
program.parseAsync(process.argv.map((arg) => (arg === '--inspect' ? '--inspect=' : arg))).catch((error) => {
  process.stderr.write(`cinder: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
