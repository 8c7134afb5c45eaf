// The supervisor of `cinder serve` and `cinder dev` (DESIGN rule 6): the process that serves runs
// as its child, on the same ports, and is started again when it exits or when the heartbeat of its
// main thread stops (a thread stuck in V8 or isolated-vm can neither serve nor exit, and nothing
// inside the process can end it). Each restart is logged and counted; a worker that keeps being
// in flight when the child dies is quarantined (the child refuses its requests for a while). The
// supervisor runs no guest code and loads no isolates: it cannot be taken down the same way.
import { fork, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { RestartPolicy, type InFlight, type Quarantine, type RestartPolicyOptions, type RestartReason } from './restart-policy.js';

/** Set in the child's environment: it then reports to the supervisor (see supervised.ts). */
export const SUPERVISED_ENV = 'CINDER_SUPERVISED';
/** The state a child starts with (restart counts, quarantines), JSON in its environment. */
export const SUPERVISOR_STATE_ENV = 'CINDER_SUPERVISOR_STATE';

export interface SupervisorState {
  restarts: Record<RestartReason, number>;
  quarantined: Quarantine[];
}

/** What the child sends over IPC (see supervised.ts). */
export type ChildMessage =
  | { type: 'heartbeat'; inFlight: InFlight[] }
  | { type: 'entered'; worker: string };

export interface SupervisorOptions {
  logger: Logger;
  /** the script and arguments of the child (the same `cinder` command line) */
  script: string;
  args: string[];
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  /** no heartbeat for this long: the child is hung and killed (default 3 s). Guest code never runs
   *  on the child's main thread, so a silence that long is a hang, whatever the tenants' limits. */
  hangMs?: number;
  policy?: Partial<RestartPolicyOptions>;
}

export interface Supervisor {
  /** the child now serving, if any */
  readonly child: ChildProcess | null;
  readonly policy: RestartPolicy;
  /** stop the child (SIGTERM, then SIGKILL after a grace period) and stop supervising */
  stop(): Promise<number>;
}

const STOP_GRACE_MS = 10_000;

export function startSupervisor(options: SupervisorOptions): Supervisor {
  const { logger } = options;
  const hangMs = options.hangMs ?? Number(process.env.CINDER_SUPERVISOR_HANG_MS ?? 3000);
  const policy = new RestartPolicy(options.policy);
  let child: ChildProcess | null = null;
  let stopping = false;
  let stopped: ((code: number) => void) | null = null;
  const done = new Promise<number>((resolve) => (stopped = resolve));

  function start(): void {
    const state: SupervisorState = { restarts: { ...policy.restarts }, quarantined: policy.active() };
    const startedAt = Date.now();
    let lastBeat = Date.now();
    let inFlight: InFlight[] = [];
    let reportedAt = Date.now();
    let enteredSince = new Set<string>();
    let hung = false;
    const proc = fork(options.script, options.args, {
      execArgv: options.execArgv ?? process.execArgv,
      env: { ...(options.env ?? process.env), [SUPERVISED_ENV]: '1', [SUPERVISOR_STATE_ENV]: JSON.stringify(state) },
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    });
    child = proc;
    logger.info({ pid: proc.pid, restarts: state.restarts, quarantined: state.quarantined.map((q) => q.worker) }, `supervisor: started the serving process (pid ${proc.pid})`);
    process.stderr.write(`cinder supervisor: serving process pid ${proc.pid}\n`);

    proc.on('message', (message: ChildMessage) => {
      if (!message || typeof message !== 'object') return;
      lastBeat = Date.now();
      if (message.type === 'heartbeat') {
        inFlight = Array.isArray(message.inFlight) ? message.inFlight : [];
        reportedAt = lastBeat;
        enteredSince = new Set();
      } else if (message.type === 'entered' && typeof message.worker === 'string') {
        enteredSince.add(message.worker);
      }
    });

    const watch = setInterval(() => {
      if (hung || Date.now() - lastBeat < hangMs) return;
      hung = true;
      logger.error({ pid: proc.pid, silentMs: Date.now() - lastBeat }, 'supervisor: the serving process stopped answering its heartbeat; killing it');
      proc.kill('SIGKILL');
    }, Math.max(50, Math.min(500, hangMs / 4)));

    proc.on('exit', (code, signal) => {
      clearInterval(watch);
      child = null;
      if (stopping) {
        stopped?.(0);
        return;
      }
      const reason: RestartReason = hung ? 'hang' : 'exit';
      const decision = policy.record(reason, Date.now() - startedAt, inFlight, reportedAt, [...enteredSince]);
      const restarts = policy.restarts.exit + policy.restarts.hang;
      logger.error(
        { pid: proc.pid, code, signal, reason, blamed: decision.blamed, restarts, delayMs: decision.delayMs },
        `supervisor: the serving process ${hung ? 'hung' : `exited (${signal ?? `code ${code}`})`}; restart ${restarts}${decision.delayMs ? ` in ${decision.delayMs} ms` : ''}`,
      );
      for (const entry of decision.quarantined) logger.error({ worker: entry.worker, until: new Date(entry.until).toISOString() }, `supervisor: ${entry.reason}`);
      const timer = setTimeout(() => {
        if (!stopping) start();
        else stopped?.(0);
      }, decision.delayMs);
      timer.unref?.();
      // Keep the supervisor alive during the backoff.
      pending = timer;
    });
  }

  let pending: NodeJS.Timeout | null = null;
  const keepAlive = setInterval(() => {}, 1 << 30);
  start();

  return {
    get child() {
      return child;
    },
    policy,
    stop() {
      if (!stopping) {
        stopping = true;
        if (pending) clearTimeout(pending);
        const proc = child;
        if (!proc) stopped?.(0);
        else {
          proc.kill('SIGTERM');
          setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS).unref();
        }
      }
      return done.then((code) => {
        clearInterval(keepAlive);
        return code;
      });
    },
  };
}

/**
 * Run this same `cinder` command line as a supervised child and supervise it until SIGTERM or
 * SIGINT, which stop the child cleanly. The child sees SUPERVISED_ENV and serves.
 */
export function superviseThisCommand(logger: Logger): void {
  const supervisor = startSupervisor({ logger, script: process.argv[1], args: process.argv.slice(2) });
  const stop = () => {
    supervisor.stop().then((code) => process.exit(code));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
