// /restart: a rolling restart of this node's serving processes, without a signal (`cinder restart`;
// SIGHUP to the supervisor does the same). Operator only (scope.ts). Each process is replaced in
// turn, the new one serving before the old one drains, so no request is lost.
//
//   POST /restart   202 {"restart": {id, state: "rolling", replaced, processes, startedAt}}
//                   (a restart already under way is joined, not started twice)
//   GET  /restart   200 {"restart": {... state "rolling" | "done" | "failed", finishedAt, error}}
//                   or {"restart": null} before the first
// The answer comes at once: the process answering may itself be one of those replaced, so it
// cannot wait for the end; poll GET /restart (any process of the node answers it).
// One node's processes: with several nodes, restart each in turn behind the load balancer.
import { Hono } from 'hono';
import { conflict } from './errors.js';

/** The rolling restart as the process answering sees it (src/app/supervised.ts asks the supervisor). */
export interface RestartStatus {
  id: number;
  state: 'rolling' | 'done' | 'failed';
  startedAt: string;
  finishedAt?: string;
  replaced: number;
  processes: number;
  error?: string;
}

export interface RestartControl {
  start(): Promise<RestartStatus | null>;
  status(): Promise<RestartStatus | null>;
}

export function restartRoutes(control: RestartControl | null): Hono {
  const app = new Hono();
  const unsupervised = () =>
    conflict('this node serves without a supervisor (--no-supervisor): there is no other process to hand over to; restart it by stopping and starting it');
  const answer = async (ask: () => Promise<RestartStatus | null>, status: 200 | 202) => {
    try {
      return Response.json({ restart: await ask() }, { status });
    } catch (error) {
      return Response.json({ error: `could not reach this node's supervisor (${(error as Error).message}); try again` }, { status: 503 });
    }
  };
  app.post('/', async () => {
    if (!control) throw unsupervised();
    return answer(() => control.start(), 202);
  });
  app.get('/', async () => {
    if (!control) throw unsupervised();
    return answer(() => control.status(), 200);
  });
  return app;
}
