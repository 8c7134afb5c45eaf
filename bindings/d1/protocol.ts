// What crosses the isolate wall for D1, shared by the guest half (guest.ts) and the host half
// (host.ts); the op names are D1_OPS in protocol/wall.ts. Pure data and constants only: the
// sandbox (add-on) bundle imports this file too.

/** Limits as Cloudflare documents them for D1 (per statement, per value, per invocation). */
export const D1_LIMITS = {
  /** bytes of SQL in one statement */
  maxStatementBytes: 100_000,
  /** bound parameters in one statement */
  maxBoundParameters: 100,
  /** bytes in one string, BLOB or row */
  maxValueBytes: 2_000_000,
  /** columns in a table */
  maxColumns: 100,
  /** statements in one batch() */
  maxBatchStatements: 1000,
  /** queries (statements) one invocation may run (Workers Paid) */
  maxQueriesPerInvocation: 1000,
  /** bytes of SQL and bound values in one call (a batch): Cinder's own bound (D1 documents none),
   *  the size of D1's largest answer (50 MB); a value bound many times counts each time */
  maxCallBytes: 50_000_000,
} as const;

/** A bound value or a cell as it crosses: BLOBs as bytes (the guest turns result BLOBs into
 *  arrays of numbers, as D1 answers them). */
export type WireD1Value = null | number | string | ArrayBuffer;

export interface WireD1Statement {
  sql: string;
  params: WireD1Value[];
}

export interface WireD1Meta {
  served_by: string;
  served_by_region: string;
  served_by_primary: boolean;
  timings: { sql_duration_ms: number };
  duration: number;
  changes: number;
  last_row_id: number;
  changed_db: boolean;
  size_after: number;
  rows_read: number;
  rows_written: number;
}

/** One statement's answer: rows as arrays in column order. */
export interface WireD1Result {
  columns: string[];
  rows: WireD1Value[][];
  meta: WireD1Meta;
}

/** What d1.query answers: one result per statement, and the bookmark after them. */
export interface WireD1QueryAnswer {
  results: WireD1Result[];
  bookmark: string;
}

/** What d1.exec answers: how many statements ran and their total duration (ms). */
export interface WireD1ExecAnswer {
  count: number;
  duration: number;
}
