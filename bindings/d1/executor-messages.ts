// The messages between the server and its D1 executor process (executor.ts <-> executor-process.ts).
import type { WireD1Statement } from './protocol.js';
import type { D1EngineOptions } from './engine.js';

export type ExecutorRequest =
  | { id: number; op: 'query'; path: string; options: D1EngineOptions; statements: WireD1Statement[] }
  | { id: number; op: 'exec'; path: string; options: D1EngineOptions; sql: string; lines: boolean }
  | { id: number; op: 'dump'; path: string; options: D1EngineOptions; /** refused past this size (a guest's dump()) */ maxBytes?: number }
  | { id: number; op: 'size'; path: string; options: D1EngineOptions }
  | { id: number; op: 'close'; path: string };

/** `cpuUs`: the CPU the executor spent on the request. */
export type ExecutorReply = { id: number; cpuUs?: number; ok: unknown } | { id: number; cpuUs?: number; error: { message: string; d1: boolean } };
