// Per-step timings of the runtime's own cold starts, in-process (pool-ab.mjs --trace): which step
// of a cold start took the time, and what else was going on then. Wraps, in this process only,
// Runtime.startInstance (a cold start's span, in an AsyncLocalStorage context), the pool's take,
// and the isolated-vm calls a plain load makes on the taken isolate (compileModule,
// compileModuleSync, the entries' apply: installWorker before round 8), recording each call's wall
// time; `rest` is the cold start less those: linking, evaluating, and the serving thread's own work. The
// pool's own refills, started from inside a take, run outside that context (pump and
// scheduleRefill are wrapped to leave it), so their calls are not counted as the cold start's.
//
// Per cold start it also records: the serving thread's run-queue wait over the cold start
// (/proc/self/task/<pid>/schedstat, second field: time runnable but not running), the taken
// isolate's own CPU over the load (isolate.cpuTime: its thread's CPU clock, patched isolated-vm),
// GC pauses of the serving thread that overlap it (PerformanceObserver 'gc'), and how many pool
// builds were under way when it began.
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { join } from 'node:path';
import { rootDir } from './procs.mjs';


function servingRunDelayNs() {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'latin1').split(' ')[1]);
  } catch {
    return NaN;
  }
}

/** `roots`: the checkouts (built) whose Runtime and IsolatePool classes to wrap (pool-ab's --a). */
export async function installColdTrace(roots = [rootDir]) {
  const als = new AsyncLocalStorage();
  const traces = [];
  const gcs = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, end: e.startTime + e.duration, kind: e.detail?.kind });
  }).observe({ entryTypes: ['gc'] });

  // isolated-vm's objects are frozen, so the taken isolate's objects are handed to the loader
  // behind proxies that time the named methods (every other property read from the object itself,
  // functions bound to it): nothing else is touched.
  const timed = (target, methods, trace) =>
    new Proxy(target, {
      get(object, name) {
        const value = Reflect.get(object, name, object);
        if (typeof value !== 'function') return value;
        const spec = methods[name];
        if (!spec) return value.bind(object);
        const [step, after] = spec;
        return (...args) => {
          const t0 = performance.now();
          const out = value.apply(object, args);
          const done = () => trace.t1 === undefined && trace.steps.push([step, t0, performance.now()]);
          if (out && typeof out.then === 'function') return out.then((v) => (done(), after ? after(v) : v), (e) => (done(), Promise.reject(e)));
          done();
          return after ? after(out) : out;
        };
      },
    });
  for (const root of roots) {
  const { Runtime } = await import(join(root, 'dist', 'src', 'runtime/runtime.js'));
  const { IsolatePool } = await import(join(root, 'dist', 'src', 'runtime/pool.js'));
  const take = IsolatePool.prototype.take;
  IsolatePool.prototype.take = function (...args) {
    const trace = als.getStore();
    if (!trace) return take.apply(this, args);
    const t0 = performance.now();
    return take.apply(this, args).then((ready) => {
      trace.steps.push(['take', t0, performance.now()]);
      trace.isolate = ready.isolate;
      trace.cpu0 = ready.isolate.cpuTime;
      // (Modules are not wrapped: a resolver must hand isolated-vm the Module itself. Linking and
      // evaluating are what is left of `rest` once the timed steps are taken out.)
      ready.isolate = timed(ready.isolate, { compileModule: ['compile'], compileModuleSync: ['compileSync'] }, trace);
      ready.entry = Object.fromEntries(Object.entries(ready.entry).map(([name, ref]) => [name, timed(ref, { apply: ['install'] }, trace)]));
      return ready;
    });
  };
  for (const name of ['pump', 'scheduleRefill']) {
    const original = IsolatePool.prototype[name];
    IsolatePool.prototype[name] = function (...args) {
      return als.exit(() => original.apply(this, args));
    };
  }

  let runtimeForStats = null;
  const startInstance = Runtime.prototype.startInstance;
  Runtime.prototype.startInstance = function (...args) {
    runtimeForStats = this;
    const trace = { steps: [], building: this.poolStats().building, ready: this.poolStats().ready, runDelay0: servingRunDelayNs() };
    trace.t0 = performance.now();
    return als.run(trace, () => startInstance.apply(this, args)).then((result) => {
      trace.t1 = performance.now();
      trace.runDelayMs = (servingRunDelayNs() - trace.runDelay0) / 1e6;
      trace.cold = result.coldMs;
      trace.isolateCpuMs = trace.isolate && !trace.isolate.isDisposed ? Number(trace.isolate.cpuTime - trace.cpu0) / 1e6 : NaN;
      trace.isolate = undefined;
      traces.push(trace);
      return result;
    });
  };
  }
  return { traces, gcs, active: () => runtimeForStats };
}

const STEPS = ['take', 'compile', 'compileSync', 'install', 'rest'];

/** Each trace's time per step (ms), 'other' being the serving thread's own work and awaits between
 *  the steps; plus the GC pause overlapping it. */
export function breakdown(trace, gcs) {
  const by = Object.fromEntries(STEPS.map((s) => [s, 0]));
  let sum = 0;
  for (const [step, a, b] of trace.steps) {
    by[step] += b - a;
    sum += b - a;
  }
  by.rest = trace.t1 - trace.t0 - sum;
  const gcMs = gcs.filter((g) => g.end > trace.t0 && g.start < trace.t1).reduce((n, g) => n + Math.min(g.end, trace.t1) - Math.max(g.start, trace.t0), 0);
  return { ...by, whole: trace.t1 - trace.t0, gc: gcMs, runDelay: trace.runDelayMs, isolateCpu: trace.isolateCpuMs, building: trace.building, ready: trace.ready };
}

export { STEPS };
