// Per-deployment snapshots: the sandbox and one version's top level evaluated together and
// snapshotted, so that a cold start of that version deserializes an isolate with the worker
// already in it: no compile, no top-level run.
//
// Made in a child process (scripts/build-deployment-snapshot.mjs: isolated-vm's createSnapshot runs
// code without isolation), where the worker's code meets the worker's own limits first (its top
// level the startup limit, its warm-up request the CPU, wall and memory limits: snapshot-trial.ts),
// under a time limit, --max-old-space-size and a kernel CPU limit behind them, killed on overrun.
// The builder refuses whatever would make an isolate from the snapshot behave differently from one
// that ran the top level itself (the builder's header lists it); a refusal, a crash or a kill
// means the version is loaded plainly, as before. Whoever keeps deployments stores the result
// beside the version (control/deployments.ts) and hands it to the runtime on WorkerDefinition.
//
// One difference remains by design and is documented in docs: values the top level computes are
// computed once, at build time, for every isolate (which is why it refuses top-level draws of
// Math.random, clocks and crypto it can see; `new Date()` at the top level it cannot see).
// Math.random itself is reseeded by V8 in each isolate born from a snapshot (checked by the
// builder's self-test, and by test/integration/deployment-snapshot.test.ts).
import ivm from './ivm.js';
import { execFile, type ChildProcess } from 'node:child_process';
import { resolveLimits, type Limits } from '../model/limits.js';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isBinaryModule, type DeploymentSnapshot, type WorkerDefinition } from '../model/worker-definition.js';
import { moduleSource } from './module-sources.js';
import { BOOT_GLOBAL } from '../../protocol/wall.js';
import { snapshotKey, toExternal, type IsolateSource, type SandboxManifest } from './isolate-source.js';
import { deploymentSnapshotBuilderPath, sandboxBundlePath, sandboxManifestPath } from './paths.js';
import { ReadyIsolate } from './ready-isolate.js';
import type { IsolateReaper } from './isolate-reaper.js';
import { whenQuiet } from './quiet.js';

/** Where the builder leaves the main module's namespace; the host takes it, and deletes the
 *  global, before installWorker (so guest code never sees it). */
export const NAMESPACE_GLOBAL = '__cinder_worker_namespace';

/** Bump when the builder's output changes meaning, so stored snapshots are rebuilt. */
const BUILDER_FORMAT = '2';

/** The platform key a deployment snapshot must carry to be used by this process. */
export function deploymentSnapshotPlatform(manifest: SandboxManifest): string {
  return `${snapshotKey(manifest)}.${BUILDER_FORMAT}`;
}

export interface SnapshotBuildOptions {
  /** kill the builder after this long (ms); default DEFAULT_BUILD_TIMEOUT_MS plus the worker's
   *  wall limit and twice its startup limit (what its trial may wait) */
  timeoutMs?: number;
  /** the CPU the builder may use (s), enforced by the kernel (RLIMIT_CPU) in the builder itself:
   *  a backstop, behind the worker's own limits the builder applies (snapshot-trial.ts) */
  cpuSeconds?: number;
  /** the builder's V8 heap limit (MB), the snapshotted isolate's included */
  maxOldSpaceMb?: number;
  /** the longest the builder's trial waits for the warm-up request while its isolate is not
   *  running (ms; default DEFAULT_BUILD_WAIT_MS; the control plane passes the operator's
   *  CINDER_SNAPSHOT_WARMUP_WAIT_MS, buildWaitMs): past it, no snapshot (snapshot-trial.ts) */
  warmUpWaitMs?: number;
  /** tests: another builder script */
  builderPath?: string;
  /** tests: V8 flags or other node options before the script */
  execArgv?: string[];
  /** what the builder runs in a throwaway context before snapshotting, so the bytecode it
   *  compiles is kept (scripts/build-deployment-snapshot.mjs): the sandbox's warm-up and one
   *  request to the worker (default), the sandbox's warm-up only, or nothing (bench A/Bs) */
  warmUp?: 'sandbox' | 'request' | 'none';
}

/** builderCpuMs: the CPU the builder process used, as it reported it (absent when it was killed
 *  without saying) */
export type SnapshotBuildOutcome =
  | { ok: true; snapshot: DeploymentSnapshot; ms: number; builderCpuMs?: number }
  | { ok: false; reason: string; ms: number; builderCpuMs?: number };

export const DEFAULT_BUILD_TIMEOUT_MS = 30_000;
export const DEFAULT_BUILD_CPU_S = 15;
export const DEFAULT_BUILD_MAX_OLD_SPACE_MB = 512;
/** A warm-up request is GET / answered without a host (none is in the builder): one still waiting
 *  after this long waits for something that cannot come. A worker's wall limit may be up to the
 *  120 s ceiling, and builds run one at a time, so waiting that long would delay every other
 *  version's snapshot. 5 s leaves a request that computes (CPU is not waiting) and a loaded
 *  machine's scheduling delays ample room. */
export const DEFAULT_BUILD_WAIT_MS = 5_000;

/** The operator's CINDER_SNAPSHOT_WARMUP_WAIT_MS, else the default; a bad value is refused by name. */
export function buildWaitMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.CINDER_SNAPSHOT_WARMUP_WAIT_MS;
  if (raw === undefined || raw === '') return DEFAULT_BUILD_WAIT_MS;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`CINDER_SNAPSHOT_WARMUP_WAIT_MS must be a positive number of milliseconds, not "${raw}"`);
  return value;
}

/** Build a snapshot of `def`'s modules in a child process. Never throws: a failure is a reason. */
export async function buildDeploymentSnapshot(
  def: Pick<WorkerDefinition, 'main' | 'modules'> & Partial<Pick<WorkerDefinition, 'bindings' | 'compatibilityFlags' | 'limits'>>,
  options: SnapshotBuildOptions = {},
): Promise<SnapshotBuildOutcome> {
  const started = performance.now();
  // Data and CompiledWasm values are made by the loader in each isolate (sandbox/module-values.ts),
  // not by a top level the builder can run: such a version is loaded plainly.
  const binary = def.modules.find(isBinaryModule);
  if (binary) return { ok: false, reason: `module "${binary.name}" is a ${binary.type === 'wasm' ? 'CompiledWasm' : 'Data'} module, which is not snapshotted`, ms: performance.now() - started };
  // cloudflare:workers' env is filled in each isolate before its top level runs (with the
  // version's bindings, secrets included): a top level baked into a snapshot would have read none.
  // Only an import statement counts: the string elsewhere (Hono's logger keeps it in a variable for
  // an import() the isolate cannot run) reads nothing at the top level.
  if (def.modules.some((m) => !isBinaryModule(m) && /(?:\bfrom|\bimport)\s*["']cloudflare:workers["']/.test(m.code))) {
    return { ok: false, reason: 'the worker imports cloudflare:workers, whose env a snapshot cannot hold', ms: performance.now() - started };
  }
  // Every other kind reaches the builder as the ES module the loader would compile.
  const context = { modules: new Map(def.modules.map((m) => [m.name, m])) };
  const modules = def.modules.map((m) => {
    const code = moduleSource(m, context);
    return code === null ? m : { name: m.name, type: 'esm', code };
  });
  const dir = mkdtempSync(join(tmpdir(), 'cinder-snapshot-'));
  const out = join(dir, 'snapshot.bin');
  const manifest = JSON.parse(readFileSync(sandboxManifestPath, 'utf8')) as SandboxManifest;
  const limits: Limits = resolveLimits(def.limits);
  let builderCpuMs: number | undefined;
  const done = (outcome: { ok: true; snapshot: DeploymentSnapshot } | { ok: false; reason: string }): SnapshotBuildOutcome => {
    rmSync(dir, { recursive: true, force: true });
    return { ...outcome, ms: performance.now() - started, ...(builderCpuMs === undefined ? {} : { builderCpuMs }) };
  };
  const timeoutMs = options.timeoutMs ?? DEFAULT_BUILD_TIMEOUT_MS + limits.wallMs + 2 * limits.startupMs;
  try {
    const job = join(dir, 'job.json');
    writeFileSync(job, JSON.stringify({ sandboxPath: sandboxBundlePath, manifestPath: sandboxManifestPath, main: def.main, modules, bindings: def.bindings ?? {}, compatibilityFlags: def.compatibilityFlags ?? [], out, namespaceGlobal: NAMESPACE_GLOBAL, bootGlobal: BOOT_GLOBAL, warmUp: options.warmUp ?? 'request', limits: { cpuMs: limits.cpuMs, wallMs: limits.wallMs, memoryMb: limits.memoryMb, startupMs: limits.startupMs, waitMs: options.warmUpWaitMs ?? DEFAULT_BUILD_WAIT_MS } }));
    const args = ['--no-node-snapshot', `--max-old-space-size=${options.maxOldSpaceMb ?? DEFAULT_BUILD_MAX_OLD_SPACE_MB}`, ...(options.execArgv ?? []), options.builderPath ?? deploymentSnapshotBuilderPath, job];
    const cpuSeconds = options.cpuSeconds ?? DEFAULT_BUILD_CPU_S;
    const [file, argv] = cpuLimited(cpuSeconds, process.execPath, args);
    const stdout = await new Promise<string>((resolve, reject) => {
      let overBudget: { reason: string; cpuMs: number } | null = null;
      const child = execFile(file, argv, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
        if (overBudget) {
          builderCpuMs = overBudget.cpuMs;
          return reject(new Error(overBudget.reason));
        }
        // An answer given stands, whatever became of the process after (isolated-vm's threads can
        // crash a process that exits while an isolate it disposed is still being torn down; the
        // snapshot file was complete before the answer was printed, and its hash is checked).
        if (error && answerOf(String(stdout))) return resolve(String(stdout));
        if (error) {
          const { killed, signal, code } = error as { killed?: boolean; signal?: string; code?: unknown };
          const why = killed
            ? `killed after ${timeoutMs} ms`
            : signal === 'SIGXCPU' || signal === 'SIGKILL'
              ? `used up its ${cpuSeconds} s of CPU (${signal})`
              : `exited with ${code ?? signal}`;
          const lines = String(stderr).trim().split('\n').filter((line) => line.trim() && !/^Node\.js v|^\s+at /.test(line));
          const tail = lines.find((line) => /Error|error:|memory/i.test(line)) ?? lines.at(-1);
          reject(new Error(`the builder ${why}${tail ? `: ${tail.slice(0, 300)}` : ''}`));
        } else resolve(stdout);
      });
      liveBuilders.add(child);
      // The builder's watcher (cpuLimited) reads this pipe: a line means this process saw the
      // builder end; end of file without one means this process is gone, and it kills the builder.
      child.stdin?.on('error', () => {});
      const stopWatching = watchBudget(child, (over) => {
        overBudget = over;
        child.kill('SIGKILL');
      });
      child.once('exit', () => {
        child.stdin?.end('done\n');
        liveBuilders.delete(child);
        stopWatching();
      });
      // Builds are background work: let requests being served have the CPU first.
      try {
        if (child.pid) setPriority(child.pid, 10);
      } catch {
        // not permitted: builds run at normal priority
      }
    });
    const answer = answerOf(stdout) ?? {};
    if (typeof answer.cpuMs === 'number') builderCpuMs = answer.cpuMs;
    if (!answer.ok) return done({ ok: false, reason: answer.reason ?? 'the builder gave no answer' });
    const data = readFileSync(out);
    if (createHash('sha256').update(data).digest('hex') !== answer.sha256) return done({ ok: false, reason: 'the snapshot file does not match the hash its builder reported' });
    return done({ ok: true, snapshot: { platform: deploymentSnapshotPlatform(manifest), data, sha256: answer.sha256!, handlers: answer.handlers! } });
  } catch (error) {
    return done({ ok: false, reason: (error as Error).message });
  }
}

interface BuilderAnswer {
  ok?: boolean;
  reason?: string;
  sha256?: string;
  handlers?: string;
  cpuMs?: number;
}

/** The builder's answer: its last line of output, when that is one. */
function answerOf(stdout: string): BuilderAnswer | null {
  try {
    const answer = JSON.parse(stdout.trim().split('\n').pop() ?? '') as unknown;
    return answer && typeof answer === 'object' && 'ok' in answer ? (answer as BuilderAnswer) : null;
  } catch {
    return null;
  }
}

/** How often a builder's CPU is read against its budget (ms). */
const BUDGET_POLL_MS = 50;
/** The kernel's clock ticks per second in /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100;

/**
 * The budget the builder states before createSnapshot (a stdout line {"budget": {fromCpuMs, cpuMs,
 * reason}}: the CPU it may use from then on, all its threads), enforced from here by reading its
 * CPU in /proc: createSnapshot holds its main thread and cannot be interrupted from inside, and a
 * thread of its own to watch cost ~40 ms of CPU per build. Calls `over` once past it. Where there
 * is no /proc, only the RLIMIT_CPU and the timer bound the builder. Returns the function that stops.
 */
function watchBudget(child: ChildProcess, over: (what: { reason: string; cpuMs: number }) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let seen = '';
  const onData = (chunk: Buffer | string) => {
    seen += String(chunk);
    const lines = seen.split('\n');
    const line = lines.slice(0, -1).find((l) => l.startsWith('{"budget"'));
    if (!line) return;
    child.stdout?.off('data', onData);
    const budget = (JSON.parse(line) as { budget: { fromCpuMs: number; cpuMs: number; reason: string } }).budget;
    const stat = `/proc/${child.pid}/stat`;
    timer = setInterval(() => {
      let cpuMs: number;
      try {
        // fields after the name (which may hold spaces): utime is the 12th, stime the 13th
        const fields = readFileSync(stat, 'latin1').split(') ').pop()!.split(' ');
        cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S;
      } catch {
        return clearInterval(timer); // gone, or no /proc
      }
      if (cpuMs - budget.fromCpuMs <= budget.cpuMs) return;
      clearInterval(timer);
      over({ reason: budget.reason, cpuMs: Math.round(cpuMs) });
    }, BUDGET_POLL_MS);
    timer.unref();
  };
  if (process.platform === 'linux') child.stdout?.on('data', onData);
  return () => {
    child.stdout?.off('data', onData);
    if (timer) clearInterval(timer);
  };
}

/** Builders running now: a process that exits (a server stopping, a test file ending) takes its
 *  builders with it instead of leaving them to their CPU limit. */
const liveBuilders = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveBuilders) child.kill('SIGKILL');
});

/**
 * The builder started under a CPU limit the kernel enforces in the builder itself (RLIMIT_CPU,
 * set by the shell that then becomes the builder), not by a timer here: the worker's top level
 * and its first request run there and may never return (a handler that spins).
 *
 * And with a watcher that ends it when this process is gone (killed with -9, its 'exit' hook and
 * timers with it): the shell forks a reader of the builder's stdin, a pipe whose other end only
 * this process holds, before it becomes the builder. End of file with no line before it means
 * this process died: the reader SIGKILLs the builder at once, whatever its main thread is doing
 * (createSnapshot cannot be interrupted from inside). A line ("done", written when the builder
 * exits) lets the reader go quietly. A shell blocked in `read` costs no CPU, where a watching
 * thread in the builder cost ~40 ms per build (bench/README.md). Without a shell (Windows) only
 * the parent's timer bounds the builder.
 */
function cpuLimited(cpuSeconds: number, file: string, args: string[]): [string, string[]] {
  if (process.platform === 'win32') return [file, args];
  // (no core files either: a builder that crashes is only a refusal, and a tenant deploys at will;
  // the reader keeps none of the builder's output pipes, so its answer is read when it exits)
  const script = 'ulimit -c 0; ulimit -t "$0" || exit 1; exec 3<&0 </dev/null; { read -r _ <&3 || kill -9 $$; } >/dev/null 2>&1 & exec 3<&- "$@"';
  return ['/bin/sh', ['-c', script, String(Math.max(1, Math.ceil(cpuSeconds))), file, ...args]];
}

// --- loading ------------------------------------------------------------------------------------

/** Isolates made from a deployment snapshot: worker-loader installs them instead of loading. */
const fromSnapshot = new WeakSet<ReadyIsolate>();

export function isDeploymentSnapshotIsolate(ready: ReadyIsolate): boolean {
  return fromSnapshot.has(ready);
}

/**
 * The load step for an isolate from a deployment snapshot: take the namespace the builder left
 * (and delete its global), install it with env as a plain load would, and check the sandbox sees
 * the handlers the builder saw. Throws on any difference; the runtime then loads plainly.
 */
export async function installFromSnapshot(def: WorkerDefinition, ready: ReadyIsolate, env: string, timeoutMs: number): Promise<void> {
  // Both steps run on isolated-vm's threads, as every entry into an isolate does (rule 2).
  const namespace = (await ready.context.eval(
    `(() => { const ns = globalThis[${JSON.stringify(NAMESPACE_GLOBAL)}]; delete globalThis[${JSON.stringify(NAMESPACE_GLOBAL)}]; return ns; })()`,
    { reference: true, timeout: timeoutMs },
  )) as ivm.Reference;
  try {
    const answer = String(await ready.entry.installWorker.apply(undefined, [namespace.typeof === 'undefined' ? undefined : namespace.derefInto(), env], { timeout: timeoutMs }));
    const expected = def.snapshot?.handlers ?? '';
    const matches = expected.startsWith('service-worker') ? answer.startsWith('service-worker') : answer === expected;
    if (!matches) throw new Error(`installWorker answered "${answer}" where the snapshot's builder saw "${expected}"`);
  } finally {
    namespace.release();
  }
  ready.disallowCodeGeneration();
}

export interface DeploymentSnapshotIsolatesOptions {
  /** spare isolates kept per version that cold-starts repeatedly (0: none, every cold start
   *  makes one; default 1) */
  spares?: number;
  /** a spare nobody took for this long is disposed (ms) */
  spareTtlMs?: number;
  /** whether requests are being served right now: a spare is made in a quiet moment (at most
   *  SPARE_MAX_DEFER_MS later), not during the cold start that called for it */
  isBusy?: () => boolean;
  /** at most this many spares over all versions */
  maxSpares?: number;
  /** a version not yet loaded plainly in this process uses its snapshot only with at least this
   *  much code (bytes): a small worker's top level costs less than making an isolate from a
   *  snapshot, which cannot come from the ready pool */
  minCodeBytes?: number;
  /** a version whose plain load took longer than this (ms) uses its snapshot; one that loaded
   *  faster does not (about what making an isolate from a deployment snapshot costs: bench/README) */
  breakEvenMs?: number;
}

export const DEFAULT_SNAPSHOT_MIN_CODE_BYTES = 64 * 1024;
/** Making an isolate from a deployment snapshot is most of such a cold start (deserializing:
 *  ~0.3 ms + ~1.6 ms a MB of snapshot here, ~3 ms for a 150 KiB API worker), and the ready pool cannot hold
 *  one ahead for every version. A version that cold-starts again while its last cold start is
 *  recent (scale-out, eviction under the live cap) gets one spare made ahead, on isolated-vm's
 *  threads: its next cold start only installs (~0.3 ms). A spare holds ~3 MB (the API worker's
 *  isolate), at most maxSpares of them, each gone after spareTtlMs (bench/README.md, issue 23
 *  round 5). */
export const DEFAULT_SNAPSHOT_SPARES = 1;
/** The longest a spare waits for no request to be in flight (the pool's refills wait as long). */
const SPARE_MAX_DEFER_MS = 50;
export const DEFAULT_SNAPSHOT_BREAK_EVEN_MS = 2;

interface Entry {
  source: IsolateSource | null;
  /** why this version's snapshot is not used, once it was refused */
  refused?: string;
  spares: ReadyIsolate[];
  making: Promise<void> | null;
  /** performance.now() when the isolate being made was started (bring-up is measured from it) */
  makingSince: number;
  lastTake: number;
  timer?: NodeJS.Timeout;
}

/**
 * The runtime's side: isolates from deployment snapshots, made on isolated-vm's threads
 * (ReadyIsolate.create: spawnIsolate, context, boot) when a cold start needs one, and optionally
 * a few spares for versions that cold-started recently.
 */
export class DeploymentSnapshotIsolates {
  private readonly entries = new Map<WorkerDefinition, Entry>();
  private readonly platform: string;
  private readonly spares: number;
  private readonly spareTtlMs: number;
  private readonly maxSpares: number;
  private readonly minCodeBytes: number;
  private readonly breakEvenMs: number;
  private readonly isBusy: (() => boolean) | undefined;
  /** how long each version's last plain load took (ms), for the choice in preferred() */
  private readonly plainLoadMs = new WeakMap<WorkerDefinition, number>();
  private closed = false;
  /** isolates made from deployment snapshots, taken by cold starts, snapshots refused at load */
  readonly stats = { made: 0, taken: 0, refused: 0 };

  constructor(
    private readonly manifest: SandboxManifest,
    private readonly logger: Logger,
    options: DeploymentSnapshotIsolatesOptions = {},
  ) {
    this.platform = deploymentSnapshotPlatform(manifest);
    this.spares = options.spares ?? DEFAULT_SNAPSHOT_SPARES;
    this.spareTtlMs = options.spareTtlMs ?? 30_000;
    this.maxSpares = options.maxSpares ?? 8;
    this.minCodeBytes = options.minCodeBytes ?? DEFAULT_SNAPSHOT_MIN_CODE_BYTES;
    this.breakEvenMs = options.breakEvenMs ?? DEFAULT_SNAPSHOT_BREAK_EVEN_MS;
    this.isBusy = options.isBusy;
  }

  /** The platform key this process builds and loads snapshots for. */
  get platformKey(): string {
    return this.platform;
  }

  /** Whether cold starts of `def` come from its snapshot (verified once per definition). */
  usable(def: WorkerDefinition): boolean {
    if (!def.snapshot) return false;
    return this.entry(def).source !== null;
  }

  /**
   * Whether a cold start of `def` should come from its snapshot rather than from the ready pool
   * and a plain load: by how long its last plain load took when there was one in this process,
   * else by how much code it has.
   */
  preferred(def: WorkerDefinition): boolean {
    if (!this.usable(def)) return false;
    const plain = this.plainLoadMs.get(def);
    if (plain !== undefined) return plain > this.breakEvenMs;
    return def.modules.reduce((bytes, m) => bytes + m.code.length, 0) >= this.minCodeBytes;
  }

  /** A plain load of `def` took `ms` (the runtime reports each one). */
  recordPlainLoad(def: WorkerDefinition, ms: number): void {
    this.plainLoadMs.set(def, ms);
  }

  private entry(def: WorkerDefinition): Entry {
    let entry = this.entries.get(def);
    if (entry) return entry;
    entry = { source: null, spares: [], making: null, makingSince: 0, lastTake: 0 };
    const snapshot = def.snapshot!;
    if (snapshot.platform !== this.platform) {
      entry.refused = 'built for another platform';
    } else if (createHash('sha256').update(snapshot.data).digest('hex') !== snapshot.sha256) {
      // A damaged snapshot could crash V8: never deserialize one whose bytes the builder did not vouch for.
      entry.refused = 'its bytes do not match the hash the builder wrote';
      this.logger.warn({ worker: def.name, version: def.version }, `deployment snapshot of ${def.name} refused: ${entry.refused}; loading plainly`);
    } else {
      const data = snapshot.data;
      entry.source = {
        kind: 'snapshot',
        snapshot: toExternal(data),
        bytes: data.byteLength,
        manifest: this.manifest,
      };
    }
    this.entries.set(def, entry);
    return entry;
  }

  /**
   * Make sure an isolate from `def`'s snapshot is ready or being made; resolves when one is ready
   * (or making it failed). Returns when bring-up began (performance.now()): the cold start's time
   * counts from there.
   */
  async prepare(def: WorkerDefinition, memoryMb: number): Promise<number> {
    const entry = this.entry(def);
    if (!entry.source || this.closed) return performance.now();
    if (entry.spares.length) return performance.now();
    if (!entry.making) this.make(def, entry, memoryMb);
    const since = entry.makingSince;
    await entry.making;
    return since;
  }

  private make(def: WorkerDefinition, entry: Entry, memoryMb: number): void {
    entry.makingSince = performance.now();
    entry.making = ReadyIsolate.create(entry.source!, memoryMb).then(
      (ready) => {
        entry.making = null;
        fromSnapshot.add(ready);
        this.stats.made++;
        if (this.closed || this.entries.get(def) !== entry || !entry.source) return ready.dispose('snapshot no longer used');
        entry.spares.push(ready);
        this.armExpiry(def, entry);
      },
      (error) => {
        entry.making = null;
        this.refuse(def, `could not make an isolate from it: ${(error as Error).message}`);
      },
    );
  }

  /** An isolate from `def`'s snapshot for a cold start, if one is ready. */
  take(def: WorkerDefinition, memoryMb: number): ReadyIsolate | undefined {
    if (!def.snapshot) return undefined;
    const entry = this.entries.get(def);
    if (!entry?.source) return undefined;
    const ready = entry.spares.pop();
    if (!ready || ready.memoryMb !== memoryMb) {
      ready?.dispose('memory limit changed');
      return undefined;
    }
    // A version that cold-starts again within the spares' lifetime is likely to again (scale-out,
    // eviction under the live cap): keep a spare for it a while. A first cold start makes none,
    // so versions that come back rarely (scale to zero) cost no build that would expire unused.
    const again = entry.lastTake > 0 && Date.now() - entry.lastTake < this.spareTtlMs;
    entry.lastTake = Date.now();
    this.stats.taken++;
    if (again && this.spares > 0 && this.spareCount() < this.maxSpares && !entry.making && entry.spares.length < this.spares) {
      whenQuiet(
        () => {
          if (!entry.making && entry.spares.length < this.spares && this.entries.get(def) === entry && !this.closed) this.make(def, entry, memoryMb);
        },
        { isBusy: this.isBusy, maxWaitMs: SPARE_MAX_DEFER_MS },
      );
    }
    return ready;
  }

  private spareCount(): number {
    let n = 0;
    for (const entry of this.entries.values()) n += entry.spares.length + (entry.making ? 1 : 0);
    return n;
  }

  private armExpiry(def: WorkerDefinition, entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      for (const ready of entry.spares.splice(0)) ready.dispose('spare expired');
    }, this.spareTtlMs);
    entry.timer.unref();
  }

  /** Stop using `def`'s snapshot (a load from it failed): log why; cold starts load plainly. */
  refuse(def: WorkerDefinition, reason: string): void {
    const entry = this.entries.get(def);
    if (!entry || !entry.source) return;
    entry.source = null;
    entry.refused = reason;
    this.stats.refused++;
    this.disposeSpares(entry);
    this.logger.warn({ worker: def.name, version: def.version, reason }, `deployment snapshot of ${def.name} not used: ${reason}; loading plainly`);
  }

  /** `def` is no longer deployed (redeploy, removal): drop its spares. */
  forget(def: WorkerDefinition, reaper?: IsolateReaper): void {
    const entry = this.entries.get(def);
    if (!entry) return;
    this.entries.delete(def);
    this.disposeSpares(entry, reaper);
  }

  private disposeSpares(entry: Entry, reaper?: IsolateReaper): void {
    if (entry.timer) clearTimeout(entry.timer);
    for (const ready of entry.spares.splice(0)) ready.dispose('snapshot no longer used', reaper);
  }

  close(): void {
    this.closed = true;
    for (const entry of this.entries.values()) this.disposeSpares(entry);
    this.entries.clear();
  }
}
