// Metering, the pay-per-use record: every invocation's InvocationRecord (CPU from the isolate's
// thread CPU clock, wall time, memory, subrequests, bytes, outcome) folded into one row per worker
// per minute, kept in a UsageStore (SQLite under --data for `cinder serve`, memory otherwise), and
// summed over any range of minutes for `GET /workers/:name/usage` and `cinder usage`.
//
// Percentiles. Exact percentiles over a month of traffic would need every sample; instead each
// minute keeps a fixed log-bucket histogram of CPU ms and of wall ms: bucket i holds values in
// (1µs·g^(i-1), 1µs·g^i] with g = 2^(1/8), i.e. buckets ~9% wide from 1 µs up to hours (~300 of
// them, stored sparsely: a minute of one worker's traffic touches a few dozen). Histograms of
// different minutes merge by adding counts, so p50/p99 over any range are as accurate as over one
// minute: the reported value is the bucket's geometric middle, within ~4.4% of the true
// percentile, clamped to the smallest and largest value seen. Sums (and so means) are exact.
//
// GB-seconds. gb_s = memory held × wall time, the unit serverless platforms bill in. Memory is the
// isolate's heap in use (incl. external memory) at the end of the invocation (`memoryBytes`), not
// the memory limit (128 MB for nearly everyone, so billing the limit would charge a hello world
// like a 100 MB job) and not the peak (`peakMemoryBytes` is the isolate's all-time peak across
// every invocation it served, so it would charge one request for another's allocation). Concurrent
// invocations in one isolate each count the whole heap: the bill errs towards the memory actually
// held while they ran. GB here is 2^30 bytes.
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { InvocationRecord, Outcome } from '../runtime/invocation.js';
import { openSqlite } from '../store/open-sqlite.js';

// --- histogram --------------------------------------------------------------------------------

/** Sparse log-bucket histogram: bucket index -> count. */
export type Histogram = Record<number, number>;

const HIST_MIN_MS = 0.001;
const HIST_GROWTH = 2 ** (1 / 8);
const LOG_GROWTH = Math.log(HIST_GROWTH);
const HIST_MAX_BUCKET = 320; // 1 µs * 2^40 ≈ 12.7 days

export function bucketOf(ms: number): number {
  if (!(ms > HIST_MIN_MS)) return 0;
  return Math.min(HIST_MAX_BUCKET, Math.ceil(Math.log(ms / HIST_MIN_MS) / LOG_GROWTH));
}

/** The value a bucket stands for: its geometric middle. */
export function bucketValue(bucket: number): number {
  return bucket <= 0 ? HIST_MIN_MS / 2 : HIST_MIN_MS * HIST_GROWTH ** (bucket - 0.5);
}

function addTo(target: Histogram, source: Histogram): void {
  for (const key in source) target[key as unknown as number] = (target[key as unknown as number] ?? 0) + source[key as unknown as number];
}

/** The q-quantile (0..1) of a histogram, clamped to [min, max]; 0 when empty. */
export function quantile(histogram: Histogram, q: number, min = 0, max = Infinity): number {
  const buckets = Object.keys(histogram)
    .map(Number)
    .sort((a, b) => a - b);
  let total = 0;
  for (const b of buckets) total += histogram[b];
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const b of buckets) {
    seen += histogram[b];
    if (seen >= rank) return Math.min(max, Math.max(min, bucketValue(b)));
  }
  return max;
}

// --- rows ---------------------------------------------------------------------------------------

/** One worker's usage in one minute. */
export interface MinuteUsage {
  worker: string;
  /** start of the minute, ms since the epoch */
  minute: number;
  requests: number;
  errors: number;
  /** of `requests`, how many were cron runs */
  scheduled: number;
  outcomes: Partial<Record<Outcome, number>>;
  cpuMs: number;
  wallMs: number;
  gbS: number;
  subrequests: number;
  bytesIn: number;
  bytesOut: number;
  peakMemoryBytes: number;
  /** host CPU spent for the worker outside its isolate (D1 queries, key generation), ms */
  hostWorkMs: number;
  cpuHist: Histogram;
  wallHist: Histogram;
  cpuMin: number;
  cpuMax: number;
  wallMin: number;
  wallMax: number;
}

export const MINUTE_MS = 60_000;
const GB = 2 ** 30;
const ERROR_OUTCOMES = new Set<Outcome>(['exception', 'exceededCpu', 'exceededWall', 'exceededMemory']);

export function emptyMinute(worker: string, minute: number): MinuteUsage {
  return {
    worker,
    minute,
    requests: 0,
    errors: 0,
    scheduled: 0,
    outcomes: {},
    cpuMs: 0,
    wallMs: 0,
    gbS: 0,
    subrequests: 0,
    bytesIn: 0,
    bytesOut: 0,
    peakMemoryBytes: 0,
    hostWorkMs: 0,
    cpuHist: {},
    wallHist: {},
    cpuMin: Infinity,
    cpuMax: 0,
    wallMin: Infinity,
    wallMax: 0,
  };
}

/** Fold one invocation into a minute row. */
export function addRecord(row: MinuteUsage, record: InvocationRecord): void {
  row.requests++;
  if (ERROR_OUTCOMES.has(record.outcome)) row.errors++;
  if (record.kind === 'scheduled') row.scheduled++;
  row.outcomes[record.outcome] = (row.outcomes[record.outcome] ?? 0) + 1;
  row.cpuMs += record.cpuMs;
  row.wallMs += record.wallMs;
  row.gbS += (record.memoryBytes / GB) * (record.wallMs / 1000);
  row.subrequests += record.subrequests;
  row.bytesIn += record.bytesIn;
  row.bytesOut += record.bytesOut;
  row.peakMemoryBytes = Math.max(row.peakMemoryBytes, record.peakMemoryBytes);
  row.hostWorkMs += record.hostWorkMs ?? 0;
  const cpuBucket = bucketOf(record.cpuMs);
  const wallBucket = bucketOf(record.wallMs);
  row.cpuHist[cpuBucket] = (row.cpuHist[cpuBucket] ?? 0) + 1;
  row.wallHist[wallBucket] = (row.wallHist[wallBucket] ?? 0) + 1;
  row.cpuMin = Math.min(row.cpuMin, record.cpuMs);
  row.cpuMax = Math.max(row.cpuMax, record.cpuMs);
  row.wallMin = Math.min(row.wallMin, record.wallMs);
  row.wallMax = Math.max(row.wallMax, record.wallMs);
}

/** Add `source` into `target` (same worker; any minutes). */
export function mergeMinute(target: MinuteUsage, source: MinuteUsage): MinuteUsage {
  target.requests += source.requests;
  target.errors += source.errors;
  target.scheduled += source.scheduled;
  for (const [outcome, n] of Object.entries(source.outcomes)) target.outcomes[outcome as Outcome] = (target.outcomes[outcome as Outcome] ?? 0) + (n ?? 0);
  target.cpuMs += source.cpuMs;
  target.wallMs += source.wallMs;
  target.gbS += source.gbS;
  target.subrequests += source.subrequests;
  target.bytesIn += source.bytesIn;
  target.bytesOut += source.bytesOut;
  target.peakMemoryBytes = Math.max(target.peakMemoryBytes, source.peakMemoryBytes);
  target.hostWorkMs += source.hostWorkMs;
  addTo(target.cpuHist, source.cpuHist);
  addTo(target.wallHist, source.wallHist);
  target.cpuMin = Math.min(target.cpuMin, source.cpuMin);
  target.cpuMax = Math.max(target.cpuMax, source.cpuMax);
  target.wallMin = Math.min(target.wallMin, source.wallMin);
  target.wallMax = Math.max(target.wallMax, source.wallMax);
  return target;
}

/** What `GET /workers/:name/usage` answers. */
export interface UsageSummary {
  worker: string;
  from: string;
  to: string;
  requests: number;
  errors: number;
  cpu_ms: { sum: number; p50: number; p99: number };
  wall_ms: { sum: number; p50: number; p99: number };
  gb_s: number;
  scheduled: number;
  subrequests: number;
  bytes_in: number;
  bytes_out: number;
  peak_memory_bytes: number;
  /** host CPU spent for the worker outside its isolate (D1 queries, key generation), ms */
  host_work_ms: number;
  outcomes: Partial<Record<Outcome, number>>;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

export function summarize(worker: string, rows: MinuteUsage[], from: number, to: number): UsageSummary {
  const total = emptyMinute(worker, 0);
  for (const row of rows) mergeMinute(total, row);
  const empty = total.requests === 0;
  return {
    worker,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    requests: total.requests,
    errors: total.errors,
    cpu_ms: {
      sum: round3(total.cpuMs),
      p50: empty ? 0 : round3(quantile(total.cpuHist, 0.5, total.cpuMin, total.cpuMax)),
      p99: empty ? 0 : round3(quantile(total.cpuHist, 0.99, total.cpuMin, total.cpuMax)),
    },
    wall_ms: {
      sum: round3(total.wallMs),
      p50: empty ? 0 : round3(quantile(total.wallHist, 0.5, total.wallMin, total.wallMax)),
      p99: empty ? 0 : round3(quantile(total.wallHist, 0.99, total.wallMin, total.wallMax)),
    },
    gb_s: Number(total.gbS.toPrecision(6)),
    scheduled: total.scheduled,
    subrequests: total.subrequests,
    bytes_in: total.bytesIn,
    bytes_out: total.bytesOut,
    peak_memory_bytes: total.peakMemoryBytes,
    host_work_ms: round3(total.hostWorkMs),
    outcomes: total.outcomes,
  };
}

// --- stores -------------------------------------------------------------------------------------

/** Where minute rows are kept. `add` merges into rows already there (same worker and minute). */
export interface UsageStore {
  add(rows: MinuteUsage[]): Promise<void>;
  /** rows of `worker` with fromMinute <= minute <= toMinute, oldest first */
  range(worker: string, fromMinute: number, toMinute: number): Promise<MinuteUsage[]>;
  /** drop rows older than `beforeMinute`; returns how many */
  prune(beforeMinute: number): Promise<number>;
  close(): Promise<void>;
}

export class MemoryUsageStore implements UsageStore {
  private readonly rows = new Map<string, Map<number, MinuteUsage>>();

  async add(rows: MinuteUsage[]): Promise<void> {
    for (const row of rows) {
      let minutes = this.rows.get(row.worker);
      if (!minutes) this.rows.set(row.worker, (minutes = new Map()));
      const existing = minutes.get(row.minute);
      if (existing) mergeMinute(existing, row);
      else minutes.set(row.minute, mergeMinute(emptyMinute(row.worker, row.minute), row));
    }
  }

  async range(worker: string, fromMinute: number, toMinute: number): Promise<MinuteUsage[]> {
    const minutes = this.rows.get(worker);
    if (!minutes) return [];
    return [...minutes.values()].filter((r) => r.minute >= fromMinute && r.minute <= toMinute).sort((a, b) => a.minute - b.minute);
  }

  async prune(beforeMinute: number): Promise<number> {
    let dropped = 0;
    for (const minutes of this.rows.values()) {
      for (const minute of minutes.keys()) {
        if (minute < beforeMinute) {
          minutes.delete(minute);
          dropped++;
        }
      }
    }
    return dropped;
  }

  async close(): Promise<void> {}
}

export interface UsageRow {
  worker: string;
  minute: number;
  requests: number;
  errors: number;
  scheduled: number;
  cpu_ms: number;
  wall_ms: number;
  gb_s: number;
  subrequests: number;
  bytes_in: number;
  bytes_out: number;
  peak_memory_bytes: number;
  /** JSON: {outcomes, cpu_hist, wall_hist, cpu_min, cpu_max, wall_min, wall_max} */
  detail: string;
}

/** Minute rows in a SQLite file (`<data>/usage.sqlite` for `cinder serve`). */
export class SqliteUsageStore implements UsageStore {
  private readonly db: Database.Database;
  private readonly select: Database.Statement<[string, number], UsageRow>;
  private readonly selectRange: Database.Statement<[string, number, number], UsageRow>;
  private readonly upsert: Database.Statement<UsageRow>;
  private readonly addAll: Database.Transaction<(rows: MinuteUsage[]) => void>;

  constructor(readonly file: string) {
    // WAL with synchronous=NORMAL: a committed flush is in the WAL file before add() returns, so it
    // survives kill -9 of this process (DESIGN rule 7) without an fsync per flush; only a power cut
    // can take the last few flushes (the WAL is fsynced at checkpoints).
    this.db = openSqlite(file, 'NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS usage_minutes (
        worker            TEXT NOT NULL,
        minute            INTEGER NOT NULL,  -- ms since the epoch, start of the minute (UTC)
        requests          INTEGER NOT NULL,
        errors            INTEGER NOT NULL,
        scheduled         INTEGER NOT NULL,
        cpu_ms            REAL NOT NULL,
        wall_ms           REAL NOT NULL,
        gb_s              REAL NOT NULL,
        subrequests       INTEGER NOT NULL,
        bytes_in          INTEGER NOT NULL,
        bytes_out         INTEGER NOT NULL,
        peak_memory_bytes INTEGER NOT NULL,
        detail            TEXT NOT NULL,     -- JSON: outcomes and the CPU/wall histograms
        PRIMARY KEY (worker, minute)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS usage_by_minute ON usage_minutes (minute);
    `);
    this.select = this.db.prepare('SELECT * FROM usage_minutes WHERE worker = ? AND minute = ?');
    this.selectRange = this.db.prepare('SELECT * FROM usage_minutes WHERE worker = ? AND minute >= ? AND minute <= ? ORDER BY minute');
    this.upsert = this.db.prepare(`
      INSERT INTO usage_minutes (worker, minute, requests, errors, scheduled, cpu_ms, wall_ms, gb_s, subrequests, bytes_in, bytes_out, peak_memory_bytes, detail)
      VALUES (@worker, @minute, @requests, @errors, @scheduled, @cpu_ms, @wall_ms, @gb_s, @subrequests, @bytes_in, @bytes_out, @peak_memory_bytes, @detail)
      ON CONFLICT (worker, minute) DO UPDATE SET
        requests = excluded.requests, errors = excluded.errors, scheduled = excluded.scheduled, cpu_ms = excluded.cpu_ms,
        wall_ms = excluded.wall_ms, gb_s = excluded.gb_s, subrequests = excluded.subrequests, bytes_in = excluded.bytes_in,
        bytes_out = excluded.bytes_out, peak_memory_bytes = excluded.peak_memory_bytes, detail = excluded.detail`);
    // Read, merge and write in one transaction: another process on the same file cannot interleave.
    this.addAll = this.db.transaction((rows: MinuteUsage[]) => {
      for (const row of rows) {
        const existing = this.select.get(row.worker, row.minute);
        const merged = existing ? mergeMinute(fromRow(existing), row) : row;
        this.upsert.run(toRow(merged));
      }
    });
  }

  async add(rows: MinuteUsage[]): Promise<void> {
    if (rows.length) this.addAll.immediate(rows);
  }

  async range(worker: string, fromMinute: number, toMinute: number): Promise<MinuteUsage[]> {
    return this.selectRange.all(worker, fromMinute, toMinute).map(fromRow);
  }

  async prune(beforeMinute: number): Promise<number> {
    return this.db.prepare('DELETE FROM usage_minutes WHERE minute < ?').run(beforeMinute).changes;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

export function toRow(row: MinuteUsage): UsageRow {
  return {
    worker: row.worker,
    minute: row.minute,
    requests: row.requests,
    errors: row.errors,
    scheduled: row.scheduled,
    cpu_ms: row.cpuMs,
    wall_ms: row.wallMs,
    gb_s: row.gbS,
    subrequests: row.subrequests,
    bytes_in: row.bytesIn,
    bytes_out: row.bytesOut,
    peak_memory_bytes: row.peakMemoryBytes,
    detail: JSON.stringify({
      outcomes: row.outcomes,
      cpu_hist: row.cpuHist,
      wall_hist: row.wallHist,
      // JSON has no Infinity: an empty row's minimum is stored as null
      cpu_min: Number.isFinite(row.cpuMin) ? row.cpuMin : null,
      cpu_max: row.cpuMax,
      wall_min: Number.isFinite(row.wallMin) ? row.wallMin : null,
      wall_max: row.wallMax,
      host_work_ms: row.hostWorkMs,
    }),
  };
}

export function fromRow(row: UsageRow): MinuteUsage {
  const detail = JSON.parse(row.detail) as {
    outcomes: MinuteUsage['outcomes'];
    cpu_hist: Histogram;
    wall_hist: Histogram;
    cpu_min: number | null;
    cpu_max: number;
    wall_min: number | null;
    wall_max: number;
    /** absent in rows written before it was kept */
    host_work_ms?: number;
  };
  return {
    worker: row.worker,
    minute: row.minute,
    requests: row.requests,
    errors: row.errors,
    scheduled: row.scheduled,
    outcomes: detail.outcomes,
    cpuMs: row.cpu_ms,
    wallMs: row.wall_ms,
    gbS: row.gb_s,
    subrequests: row.subrequests,
    bytesIn: row.bytes_in,
    bytesOut: row.bytes_out,
    peakMemoryBytes: row.peak_memory_bytes,
    hostWorkMs: detail.host_work_ms ?? 0,
    cpuHist: detail.cpu_hist,
    wallHist: detail.wall_hist,
    cpuMin: detail.cpu_min ?? Infinity,
    cpuMax: detail.cpu_max,
    wallMin: detail.wall_min ?? Infinity,
    wallMax: detail.wall_max,
  };
}

// --- the meter ------------------------------------------------------------------------------------

export interface UsageMeterOptions {
  store: UsageStore;
  logger?: Logger;
  /**
   * The longest a counted invocation waits before it is written to the store (default 100 ms; 0:
   * only when flush() is called). The first record after a write arms one timer; every record
   * counted until it fires goes in the same write (one SQLite transaction, no fsync), so the warm
   * path pays a map lookup per request and a write per batch, not per request. On kill -9 what is
   * lost is at most the records of the last window: those counted in the last `flushIntervalMs`
   * (plus however late the event loop ran the timer).
   */
  flushIntervalMs?: number;
  /** rows older than this are pruned (default 31 days) */
  retentionMs?: number;
  /** clock, for tests */
  now?: () => number;
}

/** Default longest wait between an invocation's end and its usage being written (see flushIntervalMs). */
export const DEFAULT_USAGE_FLUSH_MS = 100;

export class UsageMeter {
  readonly store: UsageStore;
  /** rows not yet written, by worker + minute */
  private pending = new Map<string, MinuteUsage>();
  /** the pending row each worker's last record went to */
  private readonly latest = new Map<string, MinuteUsage>();
  private timer: NodeJS.Timeout | null = null;
  private readonly delayMs: number;
  private readonly logger: Logger | undefined;
  private readonly retentionMs: number;
  private readonly now: () => number;
  private lastPrune = 0;
  private flushing: Promise<void> | null = null;
  private closed = false;
  private failing = false;

  constructor(options: UsageMeterOptions) {
    this.store = options.store;
    this.logger = options.logger;
    this.retentionMs = options.retentionMs ?? 31 * 24 * 3600_000;
    this.now = options.now ?? Date.now;
    this.delayMs = options.flushIntervalMs ?? DEFAULT_USAGE_FLUSH_MS;
  }

  /** One write at most delayMs after the first record not yet written. */
  private arm(): void {
    if (this.timer || this.delayMs <= 0 || this.closed || !this.pending.size) return;
    // After a failed write, retry less often (the rows are kept meanwhile).
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.failing ? Math.max(this.delayMs, 5000) : this.delayMs);
    this.timer.unref();
  }

  /** Count one invocation (Runtime.onInvocation). Cheap: a map lookup and a few additions. */
  record(record: InvocationRecord): void {
    if (this.closed) return;
    const minute = Math.floor(this.now() / MINUTE_MS) * MINUTE_MS;
    // The row a worker's last record went to is nearly always the one for this one too.
    let row = this.latest.get(record.worker);
    if (!row || row.minute !== minute) {
      const key = `${record.worker}\0${minute}`;
      row = this.pending.get(key);
      if (!row) this.pending.set(key, (row = emptyMinute(record.worker, minute)));
      this.latest.set(record.worker, row);
    }
    addRecord(row, record);
    if (!this.timer) this.arm();
  }

  /**
   * Usage of `worker` in the minutes overlapping [from, to] (ms since the epoch), including what
   * has not been written to the store yet.
   */
  async usage(worker: string, from: number, to: number): Promise<UsageSummary> {
    const fromMinute = Math.floor(from / MINUTE_MS) * MINUTE_MS;
    const rows = await this.store.range(worker, fromMinute, to);
    for (const row of this.pending.values()) {
      if (row.worker === worker && row.minute >= fromMinute && row.minute <= to) rows.push(row);
    }
    // Rows being written by a flush right now are in neither place: wait for it and ask again.
    if (this.flushing) {
      await this.flushing;
      return this.usage(worker, from, to);
    }
    return summarize(worker, rows, from, to);
  }

  /** Write pending rows to the store. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (!this.pending.size) return Promise.resolve();
    const rows = [...this.pending.values()];
    this.pending = new Map();
    this.latest.clear();
    this.flushing = (async () => {
      try {
        await this.store.add(rows);
        this.failing = false;
        const now = this.now();
        if (now - this.lastPrune > 3600_000) {
          this.lastPrune = now;
          await this.store.prune(now - this.retentionMs);
        }
      } catch (error) {
        // Keep the rows for the next flush rather than lose what was metered.
        for (const row of rows) {
          const key = `${row.worker}\0${row.minute}`;
          const newer = this.pending.get(key);
          // Into the newer row (the one `latest` may point at), so no record goes astray.
          if (newer) mergeMinute(newer, row);
          else this.pending.set(key, row);
        }
        this.failing = true;
        this.logger?.error({ err: (error as Error).message }, 'could not write usage to the store; will retry');
      } finally {
        this.flushing = null;
        // Records counted while this write ran (or rows kept after a failure): their own window.
        this.arm();
      }
    })();
    return this.flushing;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
    if (this.flushing) await this.flushing;
    await this.flush();
  }
}
