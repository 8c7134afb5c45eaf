// Runs code inside a real isolate that holds the built sandbox bundle (dist/sandbox.js), with a
// minimal host bridge (random bytes, timers, logs). Unit tests of the guest Web APIs use this so
// they see exactly what worker code sees: no Node globals, only what the sandbox defines, with
// every add-on (protocol/addons.ts) installed, as in a worker that uses them all, but the
// nodejs_compat ones (their `process` and `Buffer` are not the Web platform; test/nodejs-compat).
import ivm from 'isolated-vm';
import { randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BOOT_GLOBAL, OPS, SEND_OPS, SYNC_OPS } from '../../protocol/wall.js';
import { ADDONS } from '../../protocol/addons.js';
import { NODE_ADDONS } from '../../protocol/node-modules.js';

const bundlePath = fileURLToPath(new URL('../../dist/sandbox.js', import.meta.url));

export interface Guest {
  /** Evaluate `code` as the body of an async function in the guest; returns its (copied) result. */
  run<T = unknown>(code: string): Promise<T>;
  logs: { level: string; message: string }[];
  dispose(): void;
}

export interface GuestOptions {
  /** extra async host ops (e.g. `crypto`), called with the guest's arguments */
  ops?: Record<string, (args: unknown[]) => Promise<unknown>>;
}

export async function createGuest(options: GuestOptions = {}): Promise<Guest> {
  const isolate = new ivm.Isolate({ memoryLimit: 128 });
  const context = isolate.createContextSync();
  isolate.compileScriptSync(readFileSync(bundlePath, 'utf8'), { filename: 'cinder:sandbox.js' }).runSync(context);
  const logs: Guest['logs'] = [];
  const timers = new Map<number, { timeout: NodeJS.Timeout; resolve: (fired: boolean) => void }>();
  const call = new ivm.Reference(async (op: string, _invocation: number, args: unknown[]) => {
    if (op === OPS.timer) {
      const [id, ms] = args as [number, number];
      return new Promise<boolean>((resolve) => {
        timers.set(id, { timeout: setTimeout(() => { timers.delete(id); resolve(true); }, ms), resolve });
      });
    }
    const extra = options.ops?.[op];
    if (extra) return extra(args);
    throw new Error(`unknown host op ${op}`);
  });
  const callSync = new ivm.Callback((op: string, args: unknown[]) => {
    if (op === SYNC_OPS.random) {
      const bytes = new Uint8Array(args[0] as number);
      randomFillSync(bytes);
      return new ivm.ExternalCopy(bytes.buffer).copyInto();
    }
    throw new Error(`unknown sync host op ${op}`);
  });
  const send = new ivm.Callback(
    (op: string, args: unknown[]) => {
      if (op === SEND_OPS.log) logs.push({ level: String(args[0]), message: String(args[1]) });
      if (op === SEND_OPS.clearTimer) {
        const timer = timers.get(args[0] as number);
        if (timer) { clearTimeout(timer.timeout); timers.delete(args[0] as number); timer.resolve(false); }
      }
    },
    { ignored: true },
  );
  const boot = context.global.getSync(BOOT_GLOBAL, { reference: true }) as ivm.Reference<Function>;
  const installAddon = context.evalSync(`globalThis[${JSON.stringify(BOOT_GLOBAL)}].installAddon`, { reference: true }) as ivm.Reference<Function>;
  const entries = boot.applySync(undefined, [call, callSync, send], { result: { reference: true } }) as ivm.Reference<Record<string, unknown>>;
  const nodeAddons = new Set<string>(NODE_ADDONS.map((spec) => spec.name));
  for (const spec of ADDONS.filter((spec) => !nodeAddons.has(spec.name))) {
    const code = readFileSync(fileURLToPath(new URL(`../../dist/addons/${spec.name}.js`, import.meta.url)), 'utf8');
    const wrapper = isolate.compileScriptSync(code, { filename: `cinder:addons/${spec.name}.js` }).runSync(context, { reference: true }) as ivm.Reference<Function>;
    const files: Record<string, ArrayBuffer> = {};
    for (const [key, path] of Object.entries(spec.files ?? {})) {
      const bytes = readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)));
      files[key] = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    }
    installAddon.applySync(undefined, [wrapper.derefInto(), spec.name, new ivm.ExternalCopy(files).copyInto()]);
  }
  // The code a test runs is a handler's, not a worker's top level (where timers and random values
  // are refused, sandbox/global-scope.ts): install an empty worker, as a load does after its top level.
  (entries.getSync('installWorker', { reference: true }) as ivm.Reference<Function>).applySync(undefined, [undefined, '{}']);
  return {
    logs,
    async run<T>(code: string): Promise<T> {
      const fn = `(async () => { ${code} })()`;
      return (await context.eval(fn, { promise: true, copy: true, filename: 'test.js' } as ivm.ContextEvalOptions)) as T;
    },
    dispose() {
      for (const t of timers.values()) clearTimeout(t.timeout);
      isolate.dispose();
    },
  };
}
