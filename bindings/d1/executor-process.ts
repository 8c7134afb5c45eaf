// The D1 executor: a child process of the server that owns the open database files and runs
// every statement, one request at a time, so the serving thread never runs SQL and a statement
// that would run forever is ended by killing this process (executor.ts). Requests come over IPC
// (advanced serialization: bytes cross as bytes); each names its database file.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { D1Engine, D1QueryError, type D1EngineOptions } from './engine.js';
import type { ExecutorReply, ExecutorRequest } from './executor-messages.js';
import { startExecutorChild } from '../../src/store/executor-processes.js';


const MAX_OPEN = 64;
const open = new Map<string, D1Engine>();

function engineFor(path: string, options: D1EngineOptions): D1Engine {
  let engine = open.get(path);
  if (engine) {
    // most recently used last
    open.delete(path);
    open.set(path, engine);
    return engine;
  }
  mkdirSync(dirname(path), { recursive: true });
  engine = new D1Engine(path, options);
  open.set(path, engine);
  if (open.size > MAX_OPEN) {
    const [oldest, oldEngine] = open.entries().next().value!;
    open.delete(oldest);
    oldEngine.close();
  }
  return engine;
}

function handle(request: ExecutorRequest): ExecutorReply {
  try {
    if (request.op === 'close') {
      open.get(request.path)?.close();
      open.delete(request.path);
      return { id: request.id, ok: null };
    }
    const engine = engineFor(request.path, request.options);
    switch (request.op) {
      case 'query':
        return { id: request.id, ok: engine.query(request.statements) };
      case 'exec':
        return { id: request.id, ok: engine.exec(request.sql, request.lines) };
      case 'dump':
        return { id: request.id, ok: engine.dump(request.maxBytes) };
      case 'size':
        return { id: request.id, ok: engine.size() };
    }
  } catch (error) {
    const known = error instanceof D1QueryError;
    return { id: request.id, error: { message: (error as Error).message ?? String(error), d1: known } };
  }
}

process.on('message', (request: ExecutorRequest) => {
  // The CPU each request took goes back with its answer: the server meters it to the invocation.
  const before = process.cpuUsage();
  const reply = handle(request);
  const used = process.cpuUsage(before);
  reply.cpuUs = used.user + used.system;
  if (process.connected) process.send!(reply, undefined, undefined, () => {});
});
// The server going away takes the executor with it.
process.on('disconnect', () => {
  for (const engine of open.values()) engine.close();
  process.exit(0);
});

startExecutorChild();
