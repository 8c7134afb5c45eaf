// The host half of D1 bindings: the op handlers behind guest.ts. The guest names a binding; the
// database comes only from the calling worker's own binding config for that name (its id and the
// account the control plane resolved), so a worker reaches exactly the databases bound to it.
// Statements are checked here (shapes, types, sizes) before they go to the executor; every
// statement counts against the invocation's query allowance.
import { OpAllowance, type OpCall, type OpHandler } from '../../src/runtime/contract.js';
import { D1_OPS } from '../../protocol/wall.js';
import { DEFAULT_ACCOUNT } from '../../src/model/accounts.js';
import { D1_LIMITS, type WireD1Statement, type WireD1Value } from './protocol.js';
import type { D1DatabaseRef, D1Service } from './service.js';
import { D1Error, type D1Caller } from './executor.js';

export interface D1HostOptions {
  /** statements one invocation may run (D1 on Workers Paid: 1,000) */
  maxQueriesPerInvocation?: number;
}

interface OpRegistry {
  registerOp(op: string, handler: OpHandler): void;
}

function databaseFor(call: OpCall, binding: unknown): D1DatabaseRef {
  if (typeof binding !== 'string') throw new TypeError('Invalid D1 binding');
  const config = call.binding(binding);
  if (!config || config.type !== 'd1' || typeof config.database_id !== 'string') {
    throw new TypeError(`env.${binding} is not a D1 database bound to this worker`);
  }
  return { account: config.account ?? DEFAULT_ACCOUNT, id: config.database_id };
}

function isValue(value: unknown): value is WireD1Value {
  return value === null || typeof value === 'number' || typeof value === 'string' || value instanceof ArrayBuffer;
}

/** Who a query is for and how it is bounded: the tenant whose turn it takes in the executor, the
 *  invocation's end (a query still running then is ended), and the executor CPU it took, metered
 *  to the invocation as host work (D1's time is not the worker's CPU time on Cloudflare either:
 *  it is bounded by D1's own deadline, not by the CPU limit). */
function callerOf(call: OpCall): D1Caller {
  const invocation = call.invocation;
  return {
    tenant: { account: call.worker.account ?? DEFAULT_ACCOUNT, worker: call.worker.name },
    signal: invocation?.signal,
    charge: (cpuMs) => {
      if (invocation) invocation.hostWorkMs += cpuMs;
    },
  };
}

/** Untrusted statements from the guest, checked for shape; SQLite enforces the SQL limits. */
function statementsOf(raw: unknown): WireD1Statement[] {
  if (!Array.isArray(raw)) throw new TypeError('D1: statements must be an array');
  if (raw.length > D1_LIMITS.maxBatchStatements) throw new D1Error(`too many statements in one batch: ${raw.length} (at most ${D1_LIMITS.maxBatchStatements})`);
  let bytes = 0;
  const counted = (n: number) => {
    bytes += n;
    if (bytes > D1_LIMITS.maxCallBytes) throw new D1Error(`batch too large: its SQL and bound values are more than ${D1_LIMITS.maxCallBytes} bytes together: SQLITE_TOOBIG`);
  };
  return raw.map((item) => {
    const { sql, params } = (item ?? {}) as { sql?: unknown; params?: unknown };
    if (typeof sql !== 'string') throw new TypeError('D1: a statement must be SQL text');
    if (sql.length > D1_LIMITS.maxStatementBytes) throw new D1Error(`statement too long: more than ${D1_LIMITS.maxStatementBytes} bytes: SQLITE_TOOBIG`);
    counted(sql.length);
    if (!Array.isArray(params)) throw new TypeError('D1: bound parameters must be an array');
    if (params.length > D1_LIMITS.maxBoundParameters) throw new D1Error(`too many SQL variables: ${params.length} bound (at most ${D1_LIMITS.maxBoundParameters}): SQLITE_ERROR`);
    for (const value of params) {
      if (!isValue(value)) throw new TypeError('D1: a bound value must be null, a number, a string or bytes');
      if ((typeof value === 'string' && value.length > D1_LIMITS.maxValueBytes) || (value instanceof ArrayBuffer && value.byteLength > D1_LIMITS.maxValueBytes)) {
        throw new D1Error(`string or blob too big: more than ${D1_LIMITS.maxValueBytes} bytes: SQLITE_TOOBIG`);
      }
      counted(typeof value === 'string' ? value.length : value instanceof ArrayBuffer ? value.byteLength : 8);
    }
    return { sql, params: params as WireD1Value[] };
  });
}

/** Register the d1.* ops on a runtime; all of them go through `service`. */
export function installD1(registry: OpRegistry, service: D1Service, options: D1HostOptions = {}): void {
  const maxQueries = options.maxQueriesPerInvocation ?? D1_LIMITS.maxQueriesPerInvocation;
  // Each statement counts, a batch as many as it holds (as D1 counts queries).
  const allowance = new OpAllowance(maxQueries, `D1_ERROR: Too many API requests by single worker invocation (more than ${maxQueries} D1 queries).`);
  const meter = (call: OpCall, statements: number) => allowance.take(call, statements);

  // Errors the database answers reach the guest as D1 words them.
  const register = (op: string, handler: OpHandler) =>
    registry.registerOp(op, (call, args) =>
      handler(call, args).catch((error: unknown) => {
        throw error instanceof D1Error ? new Error(`D1_ERROR: ${error.message}`) : error;
      }),
    );

  register(D1_OPS.query, async (call, [binding, rawStatements]) => {
    const database = databaseFor(call, binding);
    const statements = statementsOf(rawStatements);
    meter(call, statements.length);
    return service.query(database, statements, callerOf(call));
  });

  register(D1_OPS.exec, async (call, [binding, sql]) => {
    const database = databaseFor(call, binding);
    if (typeof sql !== 'string') throw new TypeError('D1 exec() takes SQL text');
    if (sql.length > D1_LIMITS.maxStatementBytes * 10) throw new D1Error(`exec(): SQL text too long (at most ${D1_LIMITS.maxStatementBytes * 10} bytes)`);
    meter(call, 1);
    return service.exec(database, sql, { lines: true }, callerOf(call)).catch((error: unknown) => {
      throw error instanceof D1Error ? new Error(`D1_EXEC_ERROR: ${error.message}`) : error;
    });
  });

  register(D1_OPS.dump, async (call, [binding]) => {
    const database = databaseFor(call, binding);
    meter(call, 1);
    const bytes = await service.dump(database, callerOf(call));
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  });
}
