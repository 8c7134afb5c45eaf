// node:process and the global `process` under nodejs_compat, shaped as workerd's: an EventEmitter
// with env (see nodejs-process-env.ts), nextTick, hrtime, cwd '/bundle', and
// the version facts workerd reports. Nothing here reaches the host.
import { console, performance, queueMicrotask } from './web.js';
import { EventEmitter } from './events.js';

type Callback = (...args: unknown[]) => unknown;

// Filled by the nodejs-process-env add-on when the compatibility date or flag asks for it.
const env: Record<string, string> = {};

function nextTick(callback: Callback, ...args: unknown[]): void {
  if (typeof callback !== 'function') throw new TypeError('The "callback" argument must be of type function');
  queueMicrotask(() => callback(...args));
}

// performance.now() is the sandbox's clock: it moves with I/O only, as in workerd.
function nowNs(): bigint {
  return BigInt(Math.round(performance.now() * 1e6));
}

function hrtime(previous?: [number, number]): [number, number] {
  const ns = nowNs();
  let seconds = Number(ns / 1_000_000_000n);
  let nanos = Number(ns % 1_000_000_000n);
  if (previous) {
    seconds -= previous[0];
    nanos -= previous[1];
    if (nanos < 0) {
      seconds -= 1;
      nanos += 1e9;
    }
  }
  return [seconds, nanos];
}
hrtime.bigint = nowNs;

function notAvailable(name: string): () => never {
  return () => {
    const error = new Error(`process.${name}() is not available in workers`) as Error & { code: string };
    error.code = 'ERR_METHOD_NOT_IMPLEMENTED';
    throw error;
  };
}

class Process extends EventEmitter {
  readonly env = env;
  readonly argv: string[] = [];
  readonly argv0 = '';
  readonly execArgv: string[] = [];
  readonly execPath = '';
  readonly title = 'workerd';
  readonly pid = 1;
  readonly ppid = 0;
  readonly platform = 'linux';
  readonly arch = 'x64';
  readonly version = 'v22.14.0';
  readonly versions = { node: '22.14.0' };
  readonly release = { name: 'node' };
  readonly features = {};
  readonly config = {};
  exitCode: number | undefined = undefined;
  readonly nextTick = nextTick;
  readonly hrtime = hrtime;
  readonly exit = notAvailable('exit');
  readonly abort = notAvailable('abort');
  readonly kill = notAvailable('kill');
  readonly chdir = notAvailable('chdir');

  cwd(): string {
    return '/bundle';
  }

  umask(): number {
    return 0o22;
  }

  uptime(): number {
    return performance.now() / 1000;
  }

  emitWarning(warning: string | Error, type?: string | { type?: string }): void {
    const name = typeof type === 'string' ? type : (type?.type ?? 'Warning');
    const text = warning instanceof Error ? `${warning.name}: ${warning.message}` : `${name}: ${String(warning)}`;
    console.warn(text);
  }

  get [Symbol.toStringTag](): string {
    return 'process';
  }
}

export const process = new Process();
export default process;
