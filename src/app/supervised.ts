// The serving process's half of supervision (the supervisor is supervisor.ts): a heartbeat from
// this, the main thread, which stops when the thread is stuck; which workers have invocations in
// flight, so a crash or hang can be attributed; the quarantines the supervisor decided, applied
// as refusals in the runtime. Without a supervisor (--no-supervisor, or embedded) it does nothing.
import type { Logger } from 'pino';
import type { Runtime } from '../runtime/runtime.js';
import { SUPERVISED_ENV, SUPERVISOR_STATE_ENV, type ChildMessage, type RestartStatus, type SupervisorMessage, type SupervisorState } from './supervisor.js';
import type { RestartControl } from '../control/restart-routes.js';
import type { MetricsJSON } from '../observability/metrics.js';
import type { Quarantine } from './restart-policy.js';

const HEARTBEAT_MS = 250;

/** The supervisor's state as this process started, or null when it runs unsupervised. */
export function supervisorState(): SupervisorState | null {
  if (process.env[SUPERVISED_ENV] !== '1' || typeof process.send !== 'function') return null;
  try {
    const state = JSON.parse(process.env[SUPERVISOR_STATE_ENV] ?? '') as SupervisorState;
    return {
      restarts: { exit: Number(state.restarts?.exit) || 0, hang: Number(state.restarts?.hang) || 0 },
      quarantined: Array.isArray(state.quarantined) ? state.quarantined : [],
      slot: Number(state.slot) || 0,
      processes: Number(state.processes) || 1,
    };
  } catch {
    return { restarts: { exit: 0, hang: 0 }, quarantined: [] };
  }
}

/** Report to the supervisor, if there is one. Call once the runtime serves. */
export function reportToSupervisor(runtime: Runtime, logger: Logger, state: SupervisorState | null): void {
  if (!state) return;
  const send = (message: ChildMessage) => {
    if (process.connected) process.send!(message);
  };
  const quarantine = (entry: Quarantine) => {
    const left = entry.until - Date.now();
    if (left <= 0) return;
    runtime.refuse(entry.worker, entry.reason);
    logger.warn({ worker: entry.worker, until: new Date(entry.until).toISOString() }, entry.reason);
    setTimeout(() => {
      runtime.refuse(entry.worker, null);
      logger.info({ worker: entry.worker }, `worker ${entry.worker} is out of quarantine`);
    }, left).unref();
  };
  for (const entry of state.quarantined) quarantine(entry);
  // Decided after this process started (another process crashed): applied here too.
  process.on('message', (message: SupervisorMessage) => {
    if (message && typeof message === 'object' && message.type === 'quarantine' && message.entry && typeof message.entry.worker === 'string') quarantine(message.entry);
  });

  // A worker is reported as it enters, once per heartbeat: an invocation that stops this thread
  // right away (a synchronous entry) would otherwise never be seen by a heartbeat.
  let entered = new Set<string>();
  runtime.onEnter((worker) => {
    if (entered.has(worker)) return;
    entered.add(worker);
    send({ type: 'entered', worker });
  });
  const beat = () => {
    entered = new Set();
    send({ type: 'heartbeat', inFlight: runtime.inFlightWorkers() });
  };
  beat();
  setInterval(beat, HEARTBEAT_MS).unref();
  // Serving: a rolling restart waits for this before it drains this slot's predecessor.
  send({ type: 'ready' });

  // The supervisor is gone (killed, even with -9): nobody would restart us or stop us; stop now,
  // through the same path as a SIGTERM, rather than hold the ports as an orphan.
  process.once('disconnect', () => {
    logger.warn('supervisor: the supervisor went away; stopping');
    process.kill(process.pid, 'SIGTERM');
  });

  if (process.env.CINDER_DEBUG_HOOKS === '1') installDebugHooks(runtime, logger);
}

/**
 * For tests of the supervisor only (CINDER_DEBUG_HOOKS=1, never set by Cinder itself): a worker
 * that logs one of these lines makes this process hang (its main thread blocked for good, as
 * isolated-vm's catastrophic-error path does) or abort, while its invocation is in flight.
 */
function installDebugHooks(runtime: Runtime, logger: Logger): void {
  logger.warn('CINDER_DEBUG_HOOKS is set: workers can hang or abort this process (tests only)');
  runtime.onConsole((_worker, _requestId, _level, message) => {
    if (message === '__cinder_debug_hang__') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    if (message === '__cinder_debug_abort__') process.abort();
  });
}

/**
 * The metrics of the node's other serving processes, through the supervisor (one scrape answers
 * for the whole node), and this process's own for theirs. Null when unsupervised.
 */
export interface MetricsGatherer {
  gather(): Promise<MetricsJSON[]>;
  /** what this process answers when another one gathers */
  answerWith(local: () => Promise<MetricsJSON>): void;
}

export function metricsGatherer(state: SupervisorState | null): MetricsGatherer | null {
  if (!state) return null;
  let local: () => Promise<MetricsJSON> = async () => [] as unknown as MetricsJSON;
  let nextId = 1;
  const waiting = new Map<number, (metrics: MetricsJSON[]) => void>();
  process.on('message', (message: SupervisorMessage) => {
    if (!message || typeof message !== 'object') return;
    if (message.type === 'metrics-collect') {
      local().then(
        (metrics) => process.connected && process.send!({ type: 'metrics-reply', id: message.id, metrics } satisfies ChildMessage),
        () => process.connected && process.send!({ type: 'metrics-reply', id: message.id, metrics: [] } satisfies ChildMessage),
      );
    } else if (message.type === 'metrics-response') {
      waiting.get(message.id)?.(Array.isArray(message.metrics) ? message.metrics : []);
      waiting.delete(message.id);
    }
  });
  const gather = () =>
    new Promise<MetricsJSON[]>((resolve) => {
      if (!process.connected) return resolve([]);
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve([]);
      }, 3000);
      waiting.set(id, (metrics) => {
        clearTimeout(timer);
        resolve(metrics);
      });
      process.send!({ type: 'metrics-request', id } satisfies ChildMessage);
    });
  return {
    gather,
    answerWith(fn) {
      local = fn;
    },
  };
}

/**
 * The supervisor stops the whole node (not a rolling restart of this process alone): `onStop` runs
 * when it says so, ahead of its SIGTERM (which then finds the drain already under way).
 */
export function onNodeStopping(state: SupervisorState | null, onStop: () => void): void {
  if (!state) return;
  process.on('message', (message: SupervisorMessage) => {
    if (message && typeof message === 'object' && message.type === 'node-stopping') onStop();
  });
}

/**
 * `POST /restart` and `GET /restart` on the admin API of a supervised process: asked of the
 * supervisor over IPC (it alone can start and stop serving processes). Null when unsupervised.
 */
export function restartControl(state: SupervisorState | null): RestartControl | null {
  if (!state) return null;
  let nextId = 1;
  const waiting = new Map<number, (status: RestartStatus | null) => void>();
  process.on('message', (message: SupervisorMessage) => {
    if (!message || typeof message !== 'object' || message.type !== 'restart-status') return;
    waiting.get(message.id)?.(message.status ?? null);
    waiting.delete(message.id);
  });
  const ask = (type: 'restart-start' | 'restart-query') =>
    new Promise<RestartStatus | null>((resolve, reject) => {
      if (!process.connected) return reject(new Error('the supervisor is not reachable'));
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the supervisor did not answer'));
      }, 5000);
      waiting.set(id, (status) => {
        clearTimeout(timer);
        resolve(status);
      });
      process.send!({ type, id } satisfies ChildMessage);
    });
  return { start: () => ask('restart-start'), status: () => ask('restart-query') };
}
