// Accounts and their scoped tokens; the operator's token only (scope.ts keeps account tokens out).
//   GET    /accounts                       {accounts: [{id, name, created_at, workers}]}
//   POST   /accounts {"name": "acme"}      201 {id, name, created_at}
//   GET    /accounts/:account/tokens       {tokens: [{id, label, created_at}]}   (never the secret)
//   POST   /accounts/:account/tokens {"label": "ci"}   201 {id, token, account, label}: the token,
//                                          shown this once (only its hash is stored)
//   DELETE /tokens/:id                     revoke
// :account is the account's id or name.
import { Hono, type Context } from 'hono';
import { accountNameError, type AccountInfo } from '../../model/accounts.js';
import { AccountExistsError, type DeploymentStore } from '../../store/types.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { newAccount, newToken } from '../tokens.js';
import { jsonObjectBody } from '../json-body.js';

const iso = (ms: number) => new Date(ms).toISOString();

const jsonBody = (c: Context, example: string) => jsonObjectBody(c, `the body must be a JSON object such as ${example}`, { emptyAllowed: true });

export function accountsRoutes(store: DeploymentStore): Hono {
  const app = new Hono();

  const account = async (c: Context): Promise<AccountInfo> => {
    const key = c.req.param('account') ?? '';
    const found = await store.getAccount(key);
    if (!found) throw notFound(`no account "${key}" (see GET /accounts)`);
    return found;
  };

  app.get('/accounts', async (c) => {
    const workers = await store.listWorkers();
    const accounts = await store.listAccounts();
    return c.json({ accounts: accounts.map((a) => ({ id: a.id, name: a.name, created_at: iso(a.createdAt), workers: workers.filter((w) => w.account === a.id).length })) });
  });

  app.post('/accounts', async (c) => {
    const { name } = await jsonBody(c, '{"name": "acme"}');
    const error = accountNameError(name);
    if (error) throw badRequest(`"name": ${error}`);
    const created = newAccount(name as string);
    try {
      await store.createAccount(created);
    } catch (e) {
      if (e instanceof AccountExistsError) throw conflict(e.message, { name });
      throw e;
    }
    return c.json({ id: created.id, name: created.name, created_at: iso(created.createdAt) }, 201);
  });

  app.get('/accounts/:account/tokens', async (c) => {
    const { id } = await account(c);
    return c.json({ account: id, tokens: (await store.listTokens(id)).map((t) => ({ id: t.id, label: t.label, created_at: iso(t.createdAt) })) });
  });

  app.post('/accounts/:account/tokens', async (c) => {
    const found = await account(c);
    const { label } = await jsonBody(c, '{"label": "ci"}');
    if (label !== undefined && (typeof label !== 'string' || label.length > 200)) throw badRequest('"label" must be a string of at most 200 characters');
    const { token, info } = newToken(found.id, (label as string | undefined) ?? null);
    await store.createToken(info);
    return c.json({ id: info.id, token, account: found.id, account_name: found.name, label: info.label, created_at: iso(info.createdAt) }, 201);
  });

  app.delete('/tokens/:id', async (c) => {
    const id = c.req.param('id');
    if (!(await store.deleteToken(id))) throw notFound(`no token "${id}"`);
    return c.json({ revoked: id });
  });

  return app;
}
