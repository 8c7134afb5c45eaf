// Entry of the sandbox bundle, evaluated once per snapshot (or per isolate without one). It puts
// the Web platform on globalThis and leaves one boot hook for the host. The host calls the hook
// with its bridge functions before any worker code runs; the hook deletes itself, keeps the
// bridge in a closure and returns the dispatch entry points, which the host holds as References.
import { webGlobals } from './api/index.js';
import { console } from './console.js';
import { setTimeout, setInterval, clearTimeout, clearInterval, queueMicrotask } from './timers.js';
import { installBridge, type HostBridge } from './bridge.js';
import { addEventListener, removeEventListener, installWorkerEntry, dispatchFetch, dispatchFetchBatch, awaitFetch, dispatchScheduled, dispatchQueue, dispatchSocketEvent, dispatchRpc, dispatchAddonEvent, settle, warmUp } from './dispatch.js';
import { pullStream, cancelStream } from './wire.js';
import { installAddon } from './addons.js';
import { fetch } from '../bindings/fetch/guest.js';
import './bindings.js';
import { advanceClock, installFrozenDate } from './clock.js';
import { installWasmLimits } from './wasm.js';
import { installContinuationData, resetFrame } from './async-context.js';
import { prepareLoad } from './prepare-load.js';
import { BOOT_GLOBAL, type BootAnswer } from '../protocol/wall.js';

const globals: Record<string, unknown> = {
  ...webGlobals,
  console,
  fetch,
  setTimeout,
  setInterval,
  clearTimeout,
  clearInterval,
  queueMicrotask,
  addEventListener,
  removeEventListener,
};

for (const [name, value] of Object.entries(globals)) {
  Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}
Object.defineProperty(globalThis, 'self', { value: globalThis, writable: true, configurable: true, enumerable: false });

// When this bundle was evaluated. From a snapshot every isolate reports the snapshot's build time;
// the host checks it to prove isolates really come from the snapshot.
const preludeEvaluatedAt = Date.now();

installFrozenDate(globalThis as unknown as Record<string, unknown>);

/** An entry point the host calls: an event from outside, so the guest's clock moves first. */
function entry<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return (...args: A) => {
    advanceClock();
    resetFrame();
    return fn(...args);
  };
}

function boot(call: HostBridge['call'], callSync: HostBridge['callSync'], send: HostBridge['send'], memoryMb?: number): BootAnswer {
  delete (globalThis as Record<string, unknown>)[BOOT_GLOBAL];
  installBridge({ call, callSync, send }, memoryMb);
  // AsyncLocalStorage's slot in V8 (async-context.ts), defined by the host just before boot.
  installContinuationData();
  // WebAssembly memory counts against the isolate's memory limit (wasm.ts).
  installWasmLimits(memoryMb ?? 128);
  // Until the first event, the clock reads the time the isolate was made (Workers reads 0 there).
  advanceClock();
  return {
    installWorker: entry(installWorkerEntry),
    dispatchFetch: entry(dispatchFetch),
    dispatchFetchBatch: entry(dispatchFetchBatch),
    awaitFetch,
    dispatchScheduled: entry(dispatchScheduled),
    dispatchQueue: entry(dispatchQueue),
    dispatchSocketEvent: entry(dispatchSocketEvent),
    settle: entry(settle),
    pullStream: entry(pullStream),
    cancelStream,
    installAddon: entry(installAddon),
    prepareLoad: entry(prepareLoad),
    dispatchRpc: entry(dispatchRpc),
    dispatchAddonEvent: entry(dispatchAddonEvent),
    warmUp,
    preludeEvaluatedAt,
  };
}

// The deployment-snapshot builder (scripts/build-deployment-snapshot.mjs) installs a worker's
// add-ons into the snapshot without booting a bridge; the hook is gone before any worker runs.
Object.defineProperty(boot, 'installAddon', { value: installAddon, writable: false, configurable: false, enumerable: false });
Object.defineProperty(globalThis, BOOT_GLOBAL, { value: boot, writable: false, configurable: true, enumerable: false });
