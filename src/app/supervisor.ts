// The supervisor of `cinder serve` and `cinder dev` (DESIGN rule 6): the processes that serve run
// as its children (node:cluster workers), and each is started again when it exits or when the
// heartbeat of its main thread stops (a thread stuck in V8 or isolated-vm can neither serve nor
// exit, and nothing inside the process can end it). Each restart is logged and counted; a worker
// that keeps being in flight when a child dies is quarantined (the children refuse its requests
// for a while). The supervisor runs no guest code and loads no isolates: it cannot be taken down
// the same way.
//
// `--processes N` runs N serving children on the same ports. node:cluster's round-robin, not
// SO_REUSEPORT: this process holds the listening sockets and hands each new connection to a live
// child, so a child that dies or drains loses only the connections it already had (with
// SO_REUSEPORT the kernel would reset the connections queued on a closed socket), and a child
// being replaced is simply skipped. bench/README.md has the figures that back this.
//
// It also relays between children: bus messages (deploys, KV invalidations, tail; bus.ts) and the
// metrics of every child for a scrape answered by one of them.
//
// SIGTERM/SIGINT: every child drains (stops accepting, finishes what it has, flushes usage) and the
// supervisor exits 0 when they have. SIGHUP, or `POST /restart` on the admin API (`cinder
// restart`; a child asks over IPC): a rolling restart, one slot at a time: the new child serves
// before the old one drains, so no request is lost.
import cluster, { type Worker } from 'node:cluster';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { RestartPolicy, type InFlight, type Quarantine, type RestartPolicyOptions, type RestartReason } from './restart-policy.js';
import type { BusMessage } from './bus.js';
import type { RestartStatus } from '../control/restart-routes.js';

export type { RestartStatus };
import type { MetricsJSON } from '../observability/metrics.js';
import { exitAfterLog } from '../observability/logger.js';
import { servingEnv, servingExecArgv } from './serving-flags.js';

/** Set in the child's environment: it then reports to the supervisor (see supervised.ts). */
export const SUPERVISED_ENV = 'CINDER_SUPERVISED';
/** The state a child starts with (restart counts, quarantines), JSON in its environment. */
export const SUPERVISOR_STATE_ENV = 'CINDER_SUPERVISOR_STATE';

export interface SupervisorState {
  restarts: Record<RestartReason, number>;
  quarantined: Quarantine[];
  /** which of the N serving processes this is (0-based), and N */
  slot?: number;
  processes?: number;
}

/** What a child sends over IPC (see supervised.ts). */
export type ChildMessage =
  | { type: 'heartbeat'; inFlight: InFlight[] }
  /** start a rolling restart (or join the one under way) / ask how it goes; answered by restart-status */
  | { type: 'restart-start'; id: number }
  | { type: 'restart-query'; id: number }
  | { type: 'entered'; worker: string }
  | { type: 'ready' }
  | { type: 'metrics-request'; id: number }
  | { type: 'metrics-reply'; id: number; metrics: MetricsJSON }
  | BusMessage;

/** What the supervisor sends a child. */
export type SupervisorMessage =
  | { type: 'metrics-collect'; id: number }
  | { type: 'metrics-response'; id: number; metrics: MetricsJSON[] }
  | { type: 'quarantine'; entry: Quarantine }
  /** sent before SIGTERM when the whole node stops (not a rolling restart of one process) */
  | { type: 'node-stopping' }
  | { type: 'restart-status'; id: number; status: RestartStatus | null }
  | BusMessage;

export interface SupervisorOptions {
  logger: Logger;
  /** the script and arguments of the child (the same `cinder` command line) */
  script: string;
  args: string[];
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  /** serving processes (default 1) */
  processes?: number;
  /** the node's name, for the supervisor's own metrics */
  node?: string;
  /** how long a stopping child may drain before it is killed (default 30 s; the child has its own
   *  deadline, --drain-timeout, this is the backstop) */
  stopGraceMs?: number;
  /** no heartbeat for this long: the child is hung and killed (default 3 s). Guest code never runs
   *  on the child's main thread, so a silence that long is a hang, whatever the tenants' limits. */
  hangMs?: number;
  policy?: Partial<RestartPolicyOptions>;
}

export interface Supervisor {
  /** the first serving child, if any (one process: the child) */
  readonly child: ChildProcess | null;
  /** every serving child now */
  readonly children: ChildProcess[];
  readonly policy: RestartPolicy;
  /** replace every child, one at a time, each new one serving before its predecessor drains */
  rollingRestart(): Promise<void>;
  /** the rolling restart under way, or the last one; null before the first */
  readonly restartStatus: RestartStatus | null;
  /** stop every child (SIGTERM: they drain; SIGKILL after the grace period) and stop supervising */
  stop(): Promise<number>;
}

/** One running child and what it last reported. */
interface Child {
  worker: Worker;
  slot: number;
  startedAt: number;
  lastBeat: number;
  inFlight: InFlight[];
  reportedAt: number;
  enteredSince: Set<string>;
  hung: boolean;
  ready: boolean;
  /** replaced (rolling restart) or stopping: its exit is not a crash */
  retiring: boolean;
  onReady: (() => void)[];
  exited: Promise<void>;
}

const METRICS_GATHER_MS = 1500;
const START_HANG_MS = 60_000;

export function startSupervisor(options: SupervisorOptions): Supervisor {
  const { logger } = options;
  const processes = Math.max(1, options.processes ?? 1);
  const hangMs = options.hangMs ?? Number(process.env.CINDER_SUPERVISOR_HANG_MS ?? 3000);
  const stopGraceMs = options.stopGraceMs ?? 30_000;
  const policy = new RestartPolicy(options.policy);
  const slots: (Child | null)[] = Array.from({ length: processes }, () => null);
  const all = new Set<Child>();
  const pending = new Set<NodeJS.Timeout>();
  let stopping = false;
  let rolling: Promise<void> | null = null;
  let restartStatus: RestartStatus | null = null;
  const rollingRestart = (): Promise<void> => {
    if (stopping) return Promise.resolve();
    rolling ??= roll().finally(() => (rolling = null));
    return rolling;
  };

  // CINDER_CLUSTER_SCHEDULING=shared: the children accept from the one listening socket themselves
  // (node:cluster's SCHED_NONE) instead of being handed connections; for bench/scale.mjs only.
  if (process.env.CINDER_CLUSTER_SCHEDULING === 'shared') cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ exec: options.script, args: options.args, execArgv: options.execArgv ?? servingExecArgv(process.execArgv), silent: false });

  /** `predecessorExitedAt`: this child replaces one that died then (logged: how long the slot was empty) */
  function start(slot: number, predecessorExitedAt?: number): Child {
    const state: SupervisorState = { restarts: { ...policy.restarts }, quarantined: policy.active(), slot, processes };
    const worker = cluster.fork({ ...(options.env ?? process.env), ...(options.execArgv ? {} : servingEnv(process.execArgv)), [SUPERVISED_ENV]: '1', [SUPERVISOR_STATE_ENV]: JSON.stringify(state) });
    let resolveExit!: () => void;
    const child: Child = {
      worker,
      slot,
      startedAt: Date.now(),
      lastBeat: Date.now(),
      inFlight: [],
      reportedAt: 0,
      enteredSince: new Set(),
      hung: false,
      ready: false,
      retiring: false,
      onReady: [],
      exited: new Promise<void>((resolve) => (resolveExit = resolve)),
    };
    all.add(child);
    const pid = worker.process.pid;
    const name = processes > 1 ? `serving process ${slot}` : 'the serving process';
    logger.info({ pid, slot, restarts: state.restarts, quarantined: state.quarantined.map((q) => q.worker) }, `supervisor: started serving process ${slot} (pid ${pid})`);
    process.stderr.write(`cinder supervisor: serving process pid ${pid}${processes > 1 ? ` (slot ${slot} of ${processes})` : ''}\n`);

    // A send racing the child's death fails with an 'error' event: logged, never left unhandled
    // (which would take the supervisor, and with it every serving process, down).
    worker.on('error', (error: Error) => logger.warn({ pid, slot, err: error.message }, `supervisor: IPC with serving process ${slot} failed`));
    worker.on('message', (message: ChildMessage) => {
      if (!message || typeof message !== 'object') return;
      child.lastBeat = Date.now();
      switch (message.type) {
        case 'heartbeat':
          child.inFlight = Array.isArray(message.inFlight) ? message.inFlight : [];
          child.reportedAt = child.lastBeat;
          child.enteredSince = new Set();
          break;
        case 'entered':
          if (typeof message.worker === 'string') child.enteredSince.add(message.worker);
          break;
        case 'ready':
          child.ready = true;
          if (predecessorExitedAt !== undefined) {
            const emptyMs = Date.now() - predecessorExitedAt;
            logger.info({ pid, slot, emptyMs }, `supervisor: ${name} replaced: serving ${emptyMs} ms after its predecessor exited`);
          }
          for (const listener of child.onReady.splice(0)) listener();
          break;
        case 'bus':
          // To every other child: the sender already applied it.
          for (const other of all) if (other !== child) send(other, message);
          break;
        case 'metrics-request':
          void gatherFor(child, message.id);
          break;
        case 'metrics-reply':
          metricsReplies.get(message.id)?.(child, message.metrics);
          break;
        case 'restart-start':
          if (!stopping) {
            logger.info({ pid, slot }, 'supervisor: rolling restart asked for on the admin API');
            void rollingRestart();
          }
          send(child, { type: 'restart-status', id: message.id, status: restartStatus });
          break;
        case 'restart-query':
          send(child, { type: 'restart-status', id: message.id, status: restartStatus });
          break;
      }
    });

    const watchMs = Math.max(50, Math.min(500, hangMs / 4));
    let lastWatch = Date.now();
    const silentTooLong = () => {
      // Before its first heartbeat a child is starting (a runtime, a pool, the restore: seconds
      // when N start at once on few cores): a hang then is one that lasts a minute.
      const limit = child.reportedAt > child.startedAt ? hangMs : Math.max(hangMs, START_HANG_MS);
      return !child.hung && Date.now() - child.lastBeat >= limit;
    };
    const watch = setInterval(() => {
      const now = Date.now();
      const late = now - lastWatch > watchMs + hangMs / 2;
      lastWatch = now;
      // The supervisor itself did not run for a while (a loaded machine): the child's heartbeats
      // of that while may be waiting unread in the channel, and the silence is the supervisor's.
      // Timers run before the loop reads its sockets, so judge only once they have been read.
      if (late || !silentTooLong()) return;
      setImmediate(() => {
        if (!silentTooLong()) return;
        child.hung = true;
        logger.error({ pid, slot, silentMs: Date.now() - child.lastBeat }, `supervisor: ${name} stopped answering its heartbeat; killing it`);
        worker.process.kill('SIGKILL');
      });
    }, watchMs);

    worker.on('exit', (code, signal) => {
      clearInterval(watch);
      all.delete(child);
      resolveExit();
      for (const listener of child.onReady.splice(0)) listener();
      if (slots[slot] === child) slots[slot] = null;
      if (stopping || child.retiring) return;
      const reason: RestartReason = child.hung ? 'hang' : 'exit';
      const decision = policy.record(reason, Date.now() - child.startedAt, child.inFlight, child.reportedAt, [...child.enteredSince], Date.now(), slot);
      const restarts = policy.restarts.exit + policy.restarts.hang;
      logger.error(
        { pid, slot, code, signal, reason, blamed: decision.blamed, restarts, delayMs: decision.delayMs },
        `supervisor: ${name} ${child.hung ? 'hung' : `exited (${signal ?? `code ${code}`})`}; restart ${restarts}${decision.delayMs ? ` in ${decision.delayMs} ms` : ''}`,
      );
      for (const entry of decision.quarantined) {
        logger.error({ worker: entry.worker, until: new Date(entry.until).toISOString() }, `supervisor: ${entry.reason}`);
        // The processes still running refuse it too (a new one gets it in its start state).
        for (const other of all) send(other, { type: 'quarantine', entry });
      }
      const exitedAt = Date.now();
      const timer = setTimeout(() => {
        pending.delete(timer);
        if (!stopping && slots[slot] === null) slots[slot] = start(slot, exitedAt);
      }, decision.delayMs);
      pending.add(timer);
    });
    return child;
  }

  function send(child: Child, message: SupervisorMessage): void {
    if (child.worker.isConnected()) child.worker.send(message);
  }

  // --- metrics of every child, for the one answering a scrape ----------------------------------------
  let nextGather = 1;
  const metricsReplies = new Map<number, (from: Child, metrics: MetricsJSON) => void>();

  async function gatherFor(asker: Child, askerId: number): Promise<void> {
    const id = nextGather++;
    const others = [...all].filter((c) => c !== asker && c.worker.isConnected());
    const collected: MetricsJSON[] = [];
    await new Promise<void>((resolve) => {
      const waiting = new Set(others);
      const timer = setTimeout(resolve, METRICS_GATHER_MS);
      metricsReplies.set(id, (from, metrics) => {
        if (!waiting.delete(from)) return;
        if (Array.isArray(metrics)) collected.push(metrics);
        if (!waiting.size) {
          clearTimeout(timer);
          resolve();
        }
      });
      if (!waiting.size) {
        clearTimeout(timer);
        resolve();
      }
      for (const other of others) send(other, { type: 'metrics-collect', id });
    });
    metricsReplies.delete(id);
    collected.push(supervisorMetrics());
    send(asker, { type: 'metrics-response', id: askerId, metrics: collected });
  }

  function supervisorMetrics(): MetricsJSON {
    const labels = options.node ? { node: options.node } : {};
    return [
      {
        name: 'cinder_supervisor_restarts_total',
        help: 'Restarts of serving processes by their supervisor, by reason (exit: it died; hang: its heartbeat stopped).',
        type: 'counter',
        aggregator: 'sum',
        values: Object.entries(policy.restarts).map(([reason, value]) => ({ labels: { ...labels, reason }, value })),
      },
      {
        name: 'cinder_serving_processes',
        help: 'Serving processes running now.',
        type: 'gauge',
        aggregator: 'sum',
        values: [{ labels, value: [...all].filter((c) => c.ready && !c.retiring).length }],
      },
    ] as unknown as MetricsJSON;
  }

  // --- stopping and rolling -------------------------------------------------------------------------

  function retire(child: Child): Promise<void> {
    child.retiring = true;
    child.worker.process.kill('SIGTERM');
    const kill = setTimeout(() => child.worker.process.kill('SIGKILL'), stopGraceMs);
    kill.unref();
    return child.exited.then(() => clearTimeout(kill));
  }

  function whenReady(child: Child, timeoutMs: number): Promise<boolean> {
    if (child.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      child.onReady.push(() => {
        clearTimeout(timer);
        resolve(child.ready);
      });
    });
  }

  async function roll(): Promise<void> {
    const status: RestartStatus = { id: (restartStatus?.id ?? 0) + 1, state: 'rolling', startedAt: new Date().toISOString(), replaced: 0, processes };
    restartStatus = status;
    const finish = (state: 'done' | 'failed', error?: string) => {
      status.state = state;
      status.finishedAt = new Date().toISOString();
      if (error) status.error = error;
    };
    logger.info({ processes, restart: status.id }, 'supervisor: rolling restart');
    for (let slot = 0; slot < processes; slot++) {
      if (stopping) return finish('failed', 'the node is stopping');
      const old = slots[slot];
      const fresh = start(slot);
      slots[slot] = fresh;
      if (!(await whenReady(fresh, 120_000))) {
        const error = `the new serving process ${slot} did not become ready; rolling restart stopped (the old one keeps serving)`;
        logger.error({ slot, pid: fresh.worker.process.pid }, `supervisor: ${error}`);
        if (old && !old.retiring) slots[slot] = old;
        if (fresh.worker.isConnected()) void retire(fresh);
        return finish('failed', error);
      }
      if (old) await retire(old);
      status.replaced++;
    }
    finish('done');
    logger.info({ processes, restart: status.id }, 'supervisor: rolling restart done');
  }

  for (let slot = 0; slot < processes; slot++) slots[slot] = start(slot);
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));

  return {
    get child() {
      return slots[0]?.worker.process ?? null;
    },
    get children() {
      return slots.filter((c): c is Child => c !== null).map((c) => c.worker.process);
    },
    policy,
    rollingRestart,
    get restartStatus() {
      return restartStatus;
    },
    stop() {
      if (!stopping) {
        stopping = true;
        for (const timer of pending) clearTimeout(timer);
        pending.clear();
        // Told first (each keeps answering /readyz with 503 while it drains), then SIGTERM, which
        // also stops a child that does not listen for the message.
        const children = [...all];
        for (const child of children) send(child, { type: 'node-stopping' });
        void new Promise((resolve) => setTimeout(resolve, 200))
          .then(() => Promise.all(children.map(retire)))
          .then(() => resolveStopped(0));
      }
      return stopped;
    },
  };
}

/**
 * Run this same `cinder` command line as `processes` supervised children and supervise them until
 * SIGTERM or SIGINT (each child drains, then this exits 0). SIGHUP restarts them one at a time.
 */
export function superviseThisCommand(logger: Logger, options: { processes?: number; node?: string; stopGraceMs?: number } = {}): Supervisor {
  const supervisor = startSupervisor({ logger, script: process.argv[1], args: process.argv.slice(2), ...options });
  const stop = (signal: string) => {
    logger.info({ signal }, `supervisor: ${signal}: stopping the serving processes (they finish what they have first)`);
    supervisor.stop().then((code) => exitAfterLog(logger, code));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => void supervisor.rollingRestart());
  return supervisor;
}
