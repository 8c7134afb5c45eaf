// `cinder secret put|list|delete`: a deployed worker's secrets, as `wrangler secret` manages them.
// The worker is --name, else the `name` of the wrangler config in the current directory (or -c,
// with --env). A value is read from stdin when it is piped, else asked for without echo; it is
// sent to the admin API and never printed.
import { createInterface } from 'node:readline/promises';
import { Command } from 'commander';
import { ConfigError, findConfig, readConfig } from './wrangler.js';
import { adminOptions, client, say, table } from './commands.js';

interface WorkerOptions {
  name?: string;
  config?: string;
  env?: string;
}

function workerOptions(command: Command): Command {
  return adminOptions(command)
    .option('--name <worker>', 'the worker (default: name in the wrangler config)')
    .option('-c, --config <file>', 'wrangler config to take the worker name from (default: the one in this directory)')
    .option('--env <env>', 'use the [env.<env>] section of the config (its worker is <name>-<env>)');
}

function workerName(opts: WorkerOptions): string {
  if (opts.name) return opts.name;
  const file = opts.config ?? findConfig(process.cwd());
  if (!file) throw new ConfigError('which worker? pass --name <worker>, or run this in a directory with a wrangler.toml/.json/.jsonc');
  const config = readConfig(file, opts.env);
  if (!config.name) throw new ConfigError(`${config.file} has no name: pass --name <worker>`);
  return config.name;
}

/** All of stdin, less the one line end `echo` or a here-string adds. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Ask on the terminal without echoing what is typed. */
async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  // Echo off before the question shows: what is typed from then on never reaches the screen.
  stdin.setRawMode(true);
  process.stderr.write(question);
  stdin.resume();
  stdin.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            stdin.off('data', onData);
            return resolve(value);
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            return reject(new Error('cancelled; no secret was set'));
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

export function registerSecretCommands(program: Command): void {
  const secret = new Command('secret').description("set, list and delete a deployed worker's secrets (values are never shown)");

  secret.addCommand(
    workerOptions(new Command('put').description('set a secret: its value from stdin, or typed at a prompt').argument('<NAME>', 'the binding name (env.NAME)')).action(
      async (name: string, opts) => {
        const worker = workerName(opts);
        const value = process.stdin.isTTY ? await promptHidden(`Enter a secret value for ${name}: `) : await readStdin();
        const result = await client(opts).request('PUT', `/workers/${encodeURIComponent(worker)}/secrets`, JSON.stringify({ name, text: value, type: 'secret_text' }), { 'content-type': 'application/json' });
        say(`Set secret ${name} on worker ${worker}: version ${result.version.number} (${result.version.id}) is live.`);
      },
    ),
  );

  secret.addCommand(
    workerOptions(new Command('list').description("list a worker's secrets: names and types, never values").option('--json', "print the API's JSON")).action(async (opts) => {
      const worker = workerName(opts);
      const { secrets } = await client(opts).request('GET', `/workers/${encodeURIComponent(worker)}/secrets`);
      if (opts.json) return say(JSON.stringify(secrets, null, 2));
      if (!secrets.length) return say(`Worker ${worker} has no secrets. Set one with \`cinder secret put NAME\`.`);
      say(table(['NAME', 'TYPE'], secrets.map((s: { name: string; type: string }) => [s.name, s.type])));
    }),
  );

  secret.addCommand(
    workerOptions(new Command('delete').description('delete a secret (a new version without it goes live)').argument('<NAME>').option('-y, --yes', 'do not ask for confirmation')).action(
      async (name: string, opts) => {
        const worker = workerName(opts);
        if (!opts.yes && process.stdin.isTTY) {
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          const answer = await rl.question(`Delete secret ${name} of worker ${worker}? [y/N] `);
          rl.close();
          if (!/^y(es)?$/i.test(answer.trim())) return say('Not deleted.');
        }
        const result = await client(opts).request('DELETE', `/workers/${encodeURIComponent(worker)}/secrets/${encodeURIComponent(name)}`);
        say(`Deleted secret ${name} of worker ${worker}: version ${result.version.number} (${result.version.id}) is live.`);
      },
    ),
  );

  program.addCommand(secret);
}
