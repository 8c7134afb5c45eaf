// The control-plane commands of the `cinder` CLI:
//   cinder serve                       the multi-tenant server (data plane + admin API)
//   cinder deploy [path]               bundle a wrangler project or a worker file and upload it
//   cinder workers list|show|versions|rollback|delete
// The admin URL and token come from --url/--token, else CINDER_URL/CINDER_TOKEN.
// The runtime, SQLite and esbuild are imported only by the commands that use them, so a
// `cinder workers list` does not pay for loading V8 isolates.
import type { WorkerModuleSource } from '../../model/worker-definition.js';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { D1_QUERY_MS_MAX, queryMsError } from '../../../bindings/d1/executor.js';
import { createLogger, exitAfterLog } from '../../observability/logger.js';
import { DEFAULT_DATA_DIR } from '../../store/types.js';
import { AdminClient, AdminError, DEFAULT_ADMIN_URL } from './client.js';
import { defaultServingProcesses } from './serving-processes.js';
import { workerNameError } from '../../control/validate.js';
import { DEFAULT_CEILINGS, HARD_MAXIMUMS, resolveCeilings } from '../../control/ceilings.js';
import { DEFAULT_MAX_LIVE_OBJECTS, liveObjectCaps } from '../../model/live-object-caps.js';
import { CONFIG_FILES, ConfigError, bundleOptions, configMetadata, findConfig, isConfigFile, readConfig, type ProjectConfig } from './wrangler.js';
import { MODULE_CONTENT_TYPES, moduleBytes, moduleSize } from '../../model/worker-definition.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number (0-65535)');
  return n;
}

export function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

export function say(line = ''): void {
  process.stdout.write(line + '\n');
}

/** --url and --token, defaulting to CINDER_URL and CINDER_TOKEN (or the server's CINDER_ADMIN_TOKEN). */
export function adminOptions(command: Command, tokenHelp = 'admin token, or an account token (which manages that account only)'): Command {
  return command
    .addOption(new Option('--url <url>', 'admin API of `cinder serve`').env('CINDER_URL').default(DEFAULT_ADMIN_URL))
    .addOption(new Option('--token <token>', tokenHelp).env('CINDER_TOKEN'));
}

export function client(opts: { url: string; token?: string }): AdminClient {
  return new AdminClient(opts.url, opts.token ?? process.env.CINDER_ADMIN_TOKEN);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export const formatTime = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

// --- serve -------------------------------------------------------------------------------------------

function serveCommand(): Command {
  return new Command('serve')
    .description('run the multi-tenant server: workers on --port, the admin API on --admin-port')
    .option('-p, --port <port>', 'data plane port', port, 8787)
    .option('--host <host>', 'data plane address', '0.0.0.0')
    .option('--admin-port <port>', 'admin API port', port, 8788)
    .option('--admin-host <host>', 'admin API address (keep it private)', '127.0.0.1')
    .option('--data <dir>', 'where deployments (and the generated admin token) are kept', DEFAULT_DATA_DIR)
    .option('--redis <url>', 'keep deployments, versions, routes, secrets, crons, usage, KV and queues in Redis, shared by every node (deploys reach every node through pub/sub); redis://host:port for one server, redis+cluster://host:port,host:port for a Redis Cluster (a cluster node given as redis:// is detected)')
    .option('--processes <n>', `serving processes sharing the ports (default: one per 1.5 cores, rounded, at least 1: ${defaultServingProcesses(availableParallelism())} here)`, positive)
    .option('--node-id <name>', 'this node\'s name: node="..." on /metrics, shown by /healthz (default: the host name)')
    .option('--internal-host <addr>', 'with --redis: the address each serving process takes a port on for Durable Object calls from other processes and nodes (a private one; default 127.0.0.1, enough for one machine)', '127.0.0.1')
    .option('--object-lease-ms <ms>', 'with --redis, or --processes N on SQLite: how long a Durable Object\'s holder may go without renewing its lease before another process takes its objects over', positive, 10_000)
    .option('--drain-timeout <ms>', 'on SIGTERM (or a rolling restart, SIGHUP), how long requests and waitUntil work in flight may take to finish', positive, 30_000)
    .option('--allow-private-fetch [hosts]', 'let workers fetch() private, loopback and this host\'s addresses: all, or only these comma-separated hosts / host:port')
    .option('--no-server-timing', 'omit the Server-Timing header (cold, cpu, total) from responses')
    // The operator's ceilings (rule 4): tenants choose their limits within them; an upload over
    // one is refused with a 400 naming the limit and the ceiling.
    .option('--max-cpu-ms <ms>', `ceiling on a worker's cpu_ms (default ${DEFAULT_CEILINGS.cpuMs}; at most ${HARD_MAXIMUMS.cpuMs})`, positive)
    .option('--max-wall-ms <ms>', `ceiling on wall_ms (default ${DEFAULT_CEILINGS.wallMs})`, positive)
    .option('--max-memory-mb <mb>', `ceiling on memory_mb (default ${DEFAULT_CEILINGS.memoryMb})`, positive)
    .option('--max-startup-ms <ms>', `ceiling on startup_ms, the top level's time at load (default ${DEFAULT_CEILINGS.startupMs})`, positive)
    .option('--max-subrequests <n>', `ceiling on subrequests per invocation (default ${DEFAULT_CEILINGS.subrequests})`, positive)
    .option('--max-script-bytes <bytes>', `largest upload, and ceiling on script_bytes (default ${DEFAULT_CEILINGS.scriptBytes})`, positive)
    .option('--max-request-body-bytes <bytes>', `ceiling on request_body_bytes (default ${DEFAULT_CEILINGS.requestBodyBytes})`, positive)
    .option('--d1-query-ms <ms>', `the longest one D1 query (a batch, an exec) may run before it is ended (default 30000, D1's own; at most ${D1_QUERY_MS_MAX})`, positive)
    .option('--max-live-objects <n>', `live Durable Objects this serving process holds at once (default ${DEFAULT_MAX_LIVE_OBJECTS})`, positive)
    .option('--max-live-objects-per-account <n>', 'live Durable Objects one account may hold at once in a serving process (default half of --max-live-objects; at most it)', positive)
    .option('--colo <name>', 'request.cf.colo: a name for where this server is', 'LOCAL')
    .option('--trust-proxy <cidrs>', 'proxies in front (comma-separated addresses or CIDR ranges) whose CF-Connecting-IP / X-Forwarded-For / CF-IPCountry are believed; otherwise the socket peer is the client')
    .option('--origin <pattern=url>', 'where a request goes when its worker throws after ctx.passThroughOnException(), e.g. "example.com/*=http://10.0.0.5:8080" (repeatable; obeys --allow-private-fetch)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option('--origin-body-max <bytes>', 'on a route with an --origin, how much of a request body the worker read is kept so it can still be passed through (default 1048576); past it the answer is a 500 saying so', positive)
    .option('--max-asset-files <n>', 'most static asset files per version (default 20000)', positive)
    .option('--no-supervisor', 'serve in this process, unsupervised (debugging): a crash or hang is not restarted')
    .action(async (opts) => {
      const limitCeilings = { cpuMs: opts.maxCpuMs, wallMs: opts.maxWallMs, memoryMb: opts.maxMemoryMb, startupMs: opts.maxStartupMs, subrequests: opts.maxSubrequests, requestBodyBytes: opts.maxRequestBodyBytes };
      // Refused before anything starts: a ceiling over the hard maximum is an operator error.
      resolveCeilings(limitCeilings);
      if (opts.d1QueryMs !== undefined && queryMsError(opts.d1QueryMs)) throw new InvalidArgumentError(`--d1-query-ms: ${queryMsError(opts.d1QueryMs)}`);
      try {
        liveObjectCaps(opts.maxLiveObjects, opts.maxLiveObjectsPerAccount);
      } catch (error) {
        throw new InvalidArgumentError(`--max-live-objects-per-account: ${(error as Error).message}`);
      }
      const logger = createLogger();
      const { superviseThisCommand } = await import('../supervisor.js');
      const { supervisorState, reportToSupervisor, metricsGatherer, onNodeStopping, restartControl } = await import('../supervised.js');
      const supervised = supervisorState();
      // a serving child: isolates made from here on keep their heap shape (serving-flags.ts)
      if (supervised) await (await import('../serving-flags.js')).applyIsolateHeapFlags();
      const nodeId: string = opts.nodeId ?? hostname();
      const processes: number = opts.processes ?? defaultServingProcesses(availableParallelism());
      if (opts.supervisor === false && opts.processes > 1) throw new Error('--processes needs the supervisor (drop --no-supervisor)');
      // By default this process only supervises; the ones that serve are its children.
      if (opts.supervisor !== false && !supervised) {
        const { resolveAdminToken } = await import('../serve.js');
        // Made here, once: N children starting together must not each generate a different one.
        mkdirSync(opts.data, { recursive: true });
        const token = resolveAdminToken(resolve(opts.data));
        if (token.source === 'generated') {
          process.stderr.write(`cinder serve: generated an admin token; it is shown only now and kept in ${token.file}:\n  ${token.token}\n`);
        }
        superviseThisCommand(logger, { processes, node: nodeId, stopGraceMs: opts.drainTimeout + 5000 });
        return;
      }
      const { startServe } = await import('../serve.js');
      const { kvServeExtension } = await import('../kv.js');
      const { d1ServeExtension } = await import('../d1.js');
      const { r2ServeExtension } = await import('../r2.js');
      const { queuesServeExtension } = await import('../queues.js');
      // One server or a cluster, and keys of an older layout renamed (redis-setup.ts).
      const redis: string | undefined = opts.redis ? await (await import('../redis-setup.js')).prepareRedis(opts.redis, logger) : undefined;
      const server = await startServe({
        observability: supervised ? {} : undefined,
        nodeId,
        redis,
        drainTimeoutMs: opts.drainTimeout,
        cluster: supervised ? { processes: supervised.processes ?? 1, metrics: metricsGatherer(supervised), restart: restartControl(supervised) } : undefined,
        logger,
        port: opts.port,
        host: opts.host,
        adminPort: opts.adminPort,
        adminHost: opts.adminHost,
        dataDir: opts.data,
        maxScriptBytes: opts.maxScriptBytes,
        limitCeilings,
        allowPrivateFetch: typeof opts.allowPrivateFetch === 'string' ? opts.allowPrivateFetch.split(',') : !!opts.allowPrivateFetch,
        serverTiming: opts.serverTiming !== false,
        colo: opts.colo,
        trustProxy: typeof opts.trustProxy === 'string' ? opts.trustProxy.split(',') : undefined,
        origins: opts.origin,
        originBodyMax: opts.originBodyMax,
        maxAssetFiles: opts.maxAssetFiles,
        durableObjects: { internalHost: opts.internalHost, leaseMs: opts.objectLeaseMs, maxLive: opts.maxLiveObjects, maxLivePerAccount: opts.maxLiveObjectsPerAccount },
        // KV namespaces for workers' kv_namespace bindings, and /kv on the admin API.
        // D1 databases for workers' d1 bindings (<data>/d1), and /d1 on the admin API; R2
        // buckets for r2_bucket bindings (<data>/r2).
        // Queues: producers, and consumers for what each worker's live version consumes.
        extensions: [kvServeExtension({ redis }), d1ServeExtension({ service: { timeoutMs: opts.d1QueryMs } }), r2ServeExtension(), queuesServeExtension({ redis })],
      });
      // Human lines go to stderr; stdout is the JSON log stream. The token is written here only
      // when it was just generated, and never through the logger.
      const err = (line: string) => process.stderr.write(line + '\n');
      err(`cinder serve: data plane on ${server.url}, admin API on ${server.adminUrl} (data in ${server.dataDir})`);
      err(`cinder serve: ${server.restored.workers.length} workers, ${server.restored.routes} routes restored${server.restored.failed.length ? `; could not restore: ${server.restored.failed.join(', ')}` : ''}`);
      if (server.tokenSource === 'generated') {
        err(`cinder serve: generated an admin token; it is shown only now and kept in ${server.tokenFile}:`);
        err(`  ${server.token}`);
        err(`  (clients: export CINDER_URL=${server.adminUrl} CINDER_TOKEN=<token>)`);
      } else if (server.tokenSource === 'file') {
        err(`cinder serve: admin token read from ${server.tokenFile}`);
      } else {
        err('cinder serve: admin token from CINDER_ADMIN_TOKEN');
      }
      reportToSupervisor(server.runtime, logger, supervised);
      // Graceful: stop accepting, finish what is in flight (waitUntil too) up to --drain-timeout,
      // flush usage, exit 0. A second signal does not cut it short: the deadline does.
      // The whole node stopping (unsupervised, or the supervisor says so): /readyz keeps answering
      // 503 "draining" meanwhile. This process alone (a rolling restart): its admin port closes
      // at once, and the node's other processes answer for the node.
      const stop = (wholeNode: boolean) => {
        server.drain(undefined, { keepAdmin: wholeNode }).then(() => exitAfterLog(logger, 0), (error) => {
          logger.error({ err: (error as Error).message }, 'stopping failed');
          exitAfterLog(logger, 1);
        });
      };
      onNodeStopping(supervised, () => stop(true));
      process.once('SIGINT', () => stop(!supervised));
      process.once('SIGTERM', () => stop(!supervised));
    });
}

// --- deploy ------------------------------------------------------------------------------------------

interface Project {
  name: string;
  /** undefined: a project of static assets only */
  entry?: string;
  config?: ProjectConfig;
}

async function resolveProject(path: string | undefined, opts: { name?: string; env?: string }): Promise<Project> {
  const target = resolve(path ?? '.');
  if (!existsSync(target)) throw new ConfigError(`no such file or directory: ${target}`);
  let config: ProjectConfig | undefined;
  let entry: string | undefined;
  if (statSync(target).isDirectory()) {
    const file = findConfig(target);
    if (!file) {
      throw new ConfigError(`no ${CONFIG_FILES.join(', ')} in ${target}. Deploy a worker file instead (cinder deploy src/index.ts --name my-worker), or add a wrangler.toml with name and main.`);
    }
    config = readConfig(file, opts.env);
  } else if (isConfigFile(target)) {
    config = readConfig(target, opts.env);
  } else {
    if (opts.env) throw new ConfigError('--env selects a section of a wrangler config; it does not apply to a single worker file');
    entry = target;
  }
  if (config) {
    if (!config.main && !config.assets) throw new ConfigError(`${config.file} has no main: add main = "src/index.ts" (the worker's entry module), or an [assets] directory`);
    // The build command may be what makes main: it runs first (wrangler's order).
    if (config.build) {
      const { runBuildStep } = await import('../bundle.js');
      await runBuildStep(config.build);
    }
    if (config.main && !existsSync(config.main)) throw new ConfigError(`${config.file}: main is ${config.main}, which does not exist${config.build ? ' after build.command ran' : ''}`);
    entry = config.main;
  }
  const { workerNameFromFile } = await import('../dev.js');
  if (!entry && !opts.name && !config?.name) throw new ConfigError(`${config!.file} has no name: add name = "my-site" (or pass --name)`);
  const name = opts.name ?? config?.name ?? workerNameFromFile(entry!);
  const error = workerNameError(name);
  if (error) throw new ConfigError(`${error}${opts.name ? '' : config?.name ? ` (from ${config.file}; override with --name)` : ' (from the file name; pass --name)'}`);
  return { name, entry, config };
}

/** As wrangler: say so when a var of the config is about to replace a secret of the same name. */
async function warnOfShadowedSecrets(admin: AdminClient, worker: string, vars: string[]): Promise<void> {
  if (!vars.length) return;
  let secrets: { name: string }[];
  try {
    ({ secrets } = await admin.request('GET', `/workers/${encodeURIComponent(worker)}/secrets`));
  } catch (error) {
    // A first deploy has no secrets; any other failure shows itself on the upload.
    if (error instanceof AdminError) return;
    throw error;
  }
  const shadowed = secrets.map((s) => s.name).filter((name) => vars.includes(name));
  if (shadowed.length) {
    process.stderr.write(`cinder deploy: warning: ${shadowed.join(', ')} ${shadowed.length === 1 ? 'is a secret' : 'are secrets'} of ${worker}, replaced by the var${shadowed.length === 1 ? '' : 's'} of the same name in the config\n`);
  }
}

function deployCommand(): Command {
  return adminOptions(
    new Command('deploy')
      .description('bundle a worker (wrangler.toml/.json/.jsonc project, or a .js/.ts file) and upload it as a new version')
      .argument('[path]', 'project directory, wrangler config file, or worker entry file', '.')
      .option('--name <name>', 'worker name (default: the config\'s name, or the file name)')
      .option('--env <env>', 'use the [env.<env>] section of the wrangler config')
      .option('--dry-run', 'bundle and check, print what would be uploaded, upload nothing'),
  ).action(async (path: string, opts) => {
    const project = await resolveProject(path, opts);
    const metadata: Record<string, unknown> = project.config ? configMetadata(project.config) : {};
    // As wrangler: secrets set with `cinder secret put` live on the worker, not in the config, and
    // carry over to the new version (a var declared under the same name replaces the secret).
    metadata.keep_bindings = ['secret_text'];
    let bundle: { main: string; modules: WorkerModuleSource[] } = { main: '', modules: [] };
    let module: { type: string } | undefined;
    if (project.entry) {
      const { bundleWorker } = await import('../bundle.js');
      try {
        bundle = await bundleWorker(project.entry, { ...bundleOptions(project.config), mode: 'production' });
      } catch (error) {
        const { formatBuildError } = await import('../build-errors.js');
        throw new Error(`could not bundle ${project.entry}:\n${formatBuildError(error, { color: process.stderr.isTTY })}`);
      }
      module = bundle.modules.find((m) => m.name === bundle.main)!;
      if (module.type === 'esm') metadata.main_module = bundle.main;
      else metadata.body_part = bundle.main;
    }
    const assets = project.config?.assets;

    const size = bundle.modules.reduce((n, m) => n + moduleSize(m), 0);
    if (opts.dryRun) {
      if (module) say(`Would deploy ${project.name}: ${bundle.main} (${module.type === 'esm' ? 'ES module' : 'service-worker script'}), ${formatBytes(size)}`);
      if (assets) {
        const { readAssetDirectory } = await import('../assets-dir.js');
        const files = await readAssetDirectory(assets.directory);
        say(`Would upload the assets in ${assets.directory}: ${files.size} files, ${formatBytes([...files.values()].reduce((n, f) => n + f.size, 0))}`);
      }
      say(JSON.stringify(metadata, null, 2));
      return;
    }

    if (assets) {
      // Files first (only those the server lacks), then the version that references them.
      const { uploadAssets, assetsConfigMetadata } = await import('./assets.js');
      const report = await uploadAssets(client(opts), project.name, assets);
      say(`Assets: ${report.files} files, ${report.uploaded} uploaded (${formatBytes(report.uploadedBytes)}), ${report.files - report.uploaded} already on the server`);
      metadata.assets = { session: report.session, config: assetsConfigMetadata(assets) };
      if (assets.binding) (metadata.bindings as Record<string, unknown>[]).push({ type: 'assets', name: assets.binding });
    }

    const form = new FormData();
    form.append('metadata', new Blob([JSON.stringify(metadata)], { type: 'application/json' }), 'metadata.json');
    for (const m of bundle.modules) {
      form.append(m.name, new Blob([new Uint8Array(moduleBytes(m))], { type: MODULE_CONTENT_TYPES[m.type] }), m.name);
    }
    const admin = client(opts);
    await warnOfShadowedSecrets(admin, project.name, Object.keys(project.config?.vars ?? {}));
    const result = await admin.request('PUT', `/workers/${project.name}`, form);
    say(`Deployed ${project.name}: version ${result.number} (${result.version}), ${formatBytes(result.size)}`);
    if (result.routes?.length) say(`  routes:   ${result.routes.join(', ')}`);
    if (result.crons?.length) say(`  crons:    ${result.crons.join(', ')}`);
    if (result.bindings?.length) say(`  bindings: ${result.bindings.map((b: { name: string; type: string }) => `${b.name} (${b.type})`).join(', ')}`);
    say(`  reach it by host ${project.name}.<your domain>${result.routes?.length ? ' or its routes' : ''}`);
  });
}

// --- workers -----------------------------------------------------------------------------------------

function describeBinding(b: Record<string, unknown>): string {
  switch (b.type) {
    case 'plain_text':
      return `${b.name} = ${JSON.stringify(b.text)}`;
    case 'json':
      return `${b.name} = ${JSON.stringify(b.json)} (json)`;
    case 'secret_text':
      return `${b.name} (secret)`;
    case 'kv_namespace':
      return `${b.name} -> KV namespace ${b.namespace_id}`;
    case 'service':
      return `${b.name} -> worker ${b.service}`;
    default:
      return `${b.name} (${b.type})`;
  }
}

function workersCommand(): Command {
  const workers = new Command('workers').description('list, inspect, roll back and delete deployed workers');

  workers.addCommand(
    adminOptions(new Command('list').description('list deployed workers').option('--json', 'print the API\'s JSON')).action(async (opts) => {
      const { workers: list } = await client(opts).request('GET', '/workers');
      if (opts.json) return say(JSON.stringify(list, null, 2));
      if (!list.length) return say('No workers deployed. Deploy one with `cinder deploy`.');
      say(
        table(
          ['NAME', 'VERSION', 'SIZE', 'DEPLOYED', 'ROUTES'],
          list.map((w: any) => [w.name, String(w.version.number), formatBytes(w.version.size), formatTime(w.updated_at), w.routes.join(', ') || '-']),
        ),
      );
    }),
  );

  workers.addCommand(
    adminOptions(new Command('show').description('show a worker: live version, routes, bindings (secrets hidden)').argument('<name>').option('--json', 'print the API\'s JSON')).action(
      async (name: string, opts) => {
        const w = await client(opts).request('GET', `/workers/${encodeURIComponent(name)}`);
        if (opts.json) return say(JSON.stringify(w, null, 2));
        say(w.name);
        say(`  version:   ${w.version.number} (${w.version.id}), ${formatBytes(w.version.size)}, deployed ${formatTime(w.version.created_at)}`);
        say(`  main:      ${w.main_module}${w.modules.length > 1 ? ` (+${w.modules.length - 1} modules)` : ''}`);
        say(`  routes:    ${w.routes.join(', ') || '-'}`);
        say(`  bindings:  ${w.bindings.map(describeBinding).join(', ') || '-'}`);
        say(`  crons:     ${w.crons.join(', ') || '-'}`);
        const limits = Object.entries(w.limits).map(([k, v]) => `${k}=${v}`);
        say(`  limits:    ${limits.join(', ') || 'defaults'}`);
      },
    ),
  );

  workers.addCommand(
    adminOptions(new Command('versions').description('list a worker\'s versions, newest first (* = live)').argument('<name>').option('--json', 'print the API\'s JSON')).action(
      async (name: string, opts) => {
        const result = await client(opts).request('GET', `/workers/${encodeURIComponent(name)}/versions`);
        if (opts.json) return say(JSON.stringify(result.versions, null, 2));
        say(
          table(
            ['', '#', 'ID', 'CREATED', 'SIZE', 'HASH'],
            result.versions.map((v: any) => [v.current ? '*' : '', String(v.number), v.id, formatTime(v.created_at), formatBytes(v.size), v.hash.slice(0, 12)]),
          ),
        );
      },
    ),
  );

  workers.addCommand(
    adminOptions(
      new Command('rollback')
        .description('make an earlier version live: the one before the live one, or the given number or id')
        .argument('<name>')
        .argument('[version]', 'version number or id (see `cinder workers versions <name>`)'),
    ).action(async (name: string, version: string | undefined, opts) => {
      const body = version === undefined ? undefined : JSON.stringify({ version: /^\d+$/.test(version) ? Number(version) : version });
      const result = await client(opts).request('POST', `/workers/${encodeURIComponent(name)}/rollback`, body, body ? { 'content-type': 'application/json' } : {});
      if (!result.changed) return say(`${name} is already at version ${result.version.number}; nothing changed.`);
      say(`Rolled ${name} back to version ${result.version.number} (${result.version.id}).`);
      say(`Version ${result.previous.number} is still stored: \`cinder workers rollback ${name} ${result.previous.number}\` brings it back.`);
    }),
  );

  workers.addCommand(
    adminOptions(new Command('delete').description('delete a worker with all its versions and routes').argument('<name>').option('-y, --yes', 'do not ask for confirmation')).action(
      async (name: string, opts) => {
        if (!opts.yes && process.stdin.isTTY) {
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          const answer = await rl.question(`Delete worker ${name} with all its versions and routes? [y/N] `);
          rl.close();
          if (!/^y(es)?$/i.test(answer.trim())) return say('Not deleted.');
        }
        await client(opts).request('DELETE', `/workers/${encodeURIComponent(name)}`);
        say(`Deleted worker ${name}.`);
      },
    ),
  );

  return workers;
}

/**
 * `cinder restart`: a rolling restart of a node's serving processes through its admin API
 * (POST /restart, then GET /restart until it is over). Each process is replaced in turn, the new
 * one serving before the old one drains: no request is lost. The same as SIGHUP to the supervisor,
 * without needing to reach its process.
 */
function restartCommand(): Command {
  return adminOptions(
    new Command('restart')
      .description("replace each of a node's serving processes in turn, without losing a request (new code of Cinder itself, settled memory)")
      .option('--no-wait', 'return once the restart has begun')
      .option('--timeout <seconds>', 'give up waiting after this long', (v) => Number(v), 600),
    'the admin token (account tokens are refused: a restart is the operator\'s)',
  ).action(async (opts) => {
    const admin = client(opts);
    const begun = (await admin.request('POST', '/restart')).restart as { id: number; processes: number; state: string } | null;
    // (the supervisor answers null when it is stopping: there is nothing left to restart)
    if (!begun) throw new AdminError('the node is stopping (its supervisor is shutting down): no rolling restart was begun');
    say(`Rolling restart ${begun.id} of ${begun.processes} serving process${begun.processes === 1 ? '' : 'es'} under way.`);
    if (!opts.wait) return say('Follow it with GET /restart on the admin API.');
    const deadline = Date.now() + opts.timeout * 1000;
    let shown = -1;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      // The process answering may be the one being replaced: a failed poll is tried again.
      const status = await admin.request('GET', '/restart').then((r) => r.restart as { id: number; state: string; replaced: number; processes: number; error?: string } | null, () => null);
      if (status && status.id === begun.id) {
        if (status.replaced !== shown && status.state === 'rolling') say(`  replaced ${status.replaced} of ${status.processes}`);
        shown = status.replaced;
        if (status.state === 'done') return say(`Done: ${status.processes} serving process${status.processes === 1 ? '' : 'es'} replaced.`);
        if (status.state === 'failed') throw new AdminError(`the rolling restart stopped: ${status.error ?? 'unknown reason'}`);
      }
      if (Date.now() > deadline) throw new AdminError(`the rolling restart is still under way after ${opts.timeout} s; see GET /restart`);
    }
  });
}

export function registerControlCommands(program: Command): void {
  program.addCommand(serveCommand());
  program.addCommand(restartCommand());
  program.addCommand(deployCommand());
  program.addCommand(workersCommand());
}
