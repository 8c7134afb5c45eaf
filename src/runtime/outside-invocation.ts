// What a guest may ask of the host with no request of its own in flight. The guest names the
// invocation an op belongs to; none in flight means the call comes from the worker's top level
// (while it loads) or from code that outlived its request: a chain the top level started without
// awaiting it, or a callback of a request that has ended. Such code is charged to nobody and
// limited by nothing a request carries (subrequests, op counts), so the host refuses its I/O: at
// the top level what workerd refuses there, with workerd's words; afterwards all of it, as a
// Workers request's I/O ends with the request.
import { GLOBAL_SCOPE_MESSAGE } from '../../protocol/global-scope.js';
import { outsideRequestMessage } from '../../protocol/outside-request.js';
import { DO_OPS, DO_SYNC_OPS, OPS, SYNC_OPS, WEBSOCKET_OPS } from '../../protocol/wall.js';

/** What a top level may use (workerd allows them there: no I/O, nothing a request must own). */
const TOP_LEVEL_OPS = new Set<string>([OPS.crypto, OPS.compression, DO_SYNC_OPS.idFromName, DO_SYNC_OPS.idFromString]);
/**
 * Owned by no invocation: reading a body the host holds, taking an answer already given, a Durable
 * Object's input-gate tick (a task boundary, no I/O: its gates run between events), and what
 * an open WebSocket does on its own (its sends, its close, taking its events): a socket outlives
 * the request that opened it, its messages are sent when it is ready (a send made before the
 * handshake is flushed after the 101), and the host bounds each socket's buffers itself.
 */
const ANY_TIME_OPS = new Set<string>([OPS.bodyRead, SYNC_OPS.parcel, DO_OPS.tick, WEBSOCKET_OPS.send, WEBSOCKET_OPS.close, WEBSOCKET_OPS.accept, DO_OPS.webSocketSend, DO_OPS.webSocketClose]);

/** The refusal for `op` made with no invocation in flight (`loading`: the top level runs), or null. */
export function refusalOutsideInvocation(op: string, loading: boolean): string | null {
  if (ANY_TIME_OPS.has(op)) return null;
  if (loading) return TOP_LEVEL_OPS.has(op) ? null : GLOBAL_SCOPE_MESSAGE;
  return outsideRequestMessage(op);
}
