// The operator's Durable Object placement routes (with --redis): move the objects of a node that
// is gone for good to another node, or undo that. Operator only: a tenant never moves nodes.
//   POST   /durable-objects/nodes/:node/reassign  {"to": "node-b"}  -> 200 {"node", "movedTo"}
//   DELETE /durable-objects/nodes/:node/reassign                     -> 200 {"node", "movedTo": null}
import { Hono } from 'hono';
import { ControlError, badRequest, conflict } from './errors.js';
import { jsonObjectBody } from './json-body.js';
import { scopeOf } from './principal.js';

export interface ObjectNodes {
  /** throws an error whose name is NodeAliveError when `from` still has a live process */
  reassign(from: string, to: string | null): Promise<void>;
}

const NODE = /^[A-Za-z0-9._:-]{1,128}$/;

export function durableObjectRoutes(nodes: ObjectNodes, isAlive: (error: unknown) => boolean): Hono {
  const app = new Hono();
  app.use('*', async (c, next) => {
    if (scopeOf(c) !== undefined) throw new ControlError(403, 'moving Durable Objects between nodes is the operator\'s (use the operator token)');
    await next();
  });
  const move = async (from: string, to: string | null) => {
    if (!NODE.test(from)) throw badRequest(`"${from.slice(0, 64)}" is not a node id`);
    try {
      await nodes.reassign(from, to);
    } catch (error) {
      if (isAlive(error)) throw conflict((error as Error).message);
      throw error;
    }
    return { node: from, movedTo: to };
  };
  app.post('/nodes/:node/reassign', async (c) => {
    const body = await jsonObjectBody(c, 'send {"to": "<node id>"}: the node that takes the objects over');
    if (typeof body.to !== 'string' || !NODE.test(body.to)) throw badRequest('"to" must be the id of the node that takes the objects over (its --node-id)');
    return c.json(await move(c.req.param('node'), body.to));
  });
  app.delete('/nodes/:node/reassign', async (c) => c.json(await move(c.req.param('node'), null)));
  return app;
}
