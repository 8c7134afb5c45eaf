// `cinder accounts list|create` and `cinder tokens list|create|revoke`: the operator makes an
// account per tenant and hands each a scoped token, which manages that account's workers, routes,
// secrets and KV namespaces only. Run with the operator's admin token (CINDER_TOKEN).
import { Command } from 'commander';
import { adminOptions, client, formatTime, say, table } from './commands.js';

function accountsCommand(): Command {
  const accounts = new Command('accounts').description('tenants: each account owns its workers, routes and KV namespaces (operator token)');
  accounts.addCommand(
    adminOptions(new Command('list').description('list accounts').option('--json', "print the API's JSON")).action(async (opts) => {
      const { accounts: list } = await client(opts).request('GET', '/accounts');
      if (opts.json) return say(JSON.stringify(list, null, 2));
      say(table(['NAME', 'ID', 'WORKERS', 'CREATED'], list.map((a: any) => [a.name, a.id, String(a.workers), formatTime(a.created_at)])));
    }),
  );
  accounts.addCommand(
    adminOptions(new Command('create').description('create an account; then `cinder tokens create --account NAME`').argument('<name>', 'lowercase letters, digits and dashes')).action(async (name: string, opts) => {
      const account = await client(opts).request('POST', '/accounts', JSON.stringify({ name }), { 'content-type': 'application/json' });
      say(`Created account ${account.name} (id ${account.id}).`);
      say(`  give it a token: cinder tokens create --account ${account.name}`);
    }),
  );
  return accounts;
}

function tokensCommand(): Command {
  const tokens = new Command('tokens').description("an account's scoped tokens: shown once when made, stored hashed (operator token)");
  tokens.addCommand(
    adminOptions(
      new Command('create')
        .description('make a token that manages one account only; it is printed once')
        .requiredOption('--account <account>', 'account name or id')
        .option('--label <label>', 'what the token is for (shown in listings)'),
    ).action(async (opts) => {
      const body = JSON.stringify(opts.label ? { label: opts.label } : {});
      const made = await client(opts).request('POST', `/accounts/${encodeURIComponent(opts.account)}/tokens`, body, { 'content-type': 'application/json' });
      // The token on stdout alone (scripts capture it); the explanation on stderr.
      process.stderr.write(`Token ${made.id} for account ${made.account_name} (${made.account}); it is shown only now:\n`);
      say(made.token);
      process.stderr.write(`  (the tenant: export CINDER_URL=<admin url> CINDER_TOKEN=<token>; revoke with: cinder tokens revoke ${made.id})\n`);
    }),
  );
  tokens.addCommand(
    adminOptions(new Command('list').description("list an account's tokens (never their secrets)").requiredOption('--account <account>', 'account name or id').option('--json', "print the API's JSON")).action(
      async (opts) => {
        const result = await client(opts).request('GET', `/accounts/${encodeURIComponent(opts.account)}/tokens`);
        if (opts.json) return say(JSON.stringify(result.tokens, null, 2));
        say(table(['ID', 'LABEL', 'CREATED'], result.tokens.map((t: any) => [t.id, t.label ?? '-', formatTime(t.created_at)])));
      },
    ),
  );
  tokens.addCommand(
    adminOptions(new Command('revoke').description('revoke a token at once').argument('<id>', 'token id (tok_...)')).action(async (id: string, opts) => {
      await client(opts).request('DELETE', `/tokens/${encodeURIComponent(id)}`);
      say(`Revoked ${id}.`);
    }),
  );
  return tokens;
}

export function registerAccountCommands(program: Command): void {
  program.addCommand(accountsCommand());
  program.addCommand(tokensCommand());
}
