// Worker stacks in dev, pointed at the sources: a frame in the bundle (`file:///index.js:41:9`)
// becomes the file and line it was built from (`src/routes/user.ts:12:11`), through the source
// map esbuild made with the bundle. Used on exceptions, load errors and console lines. Only
// `file:///<module>` positions are rewritten, so mapping a text twice changes nothing more.
import { relative, sep } from 'node:path';
import { originalPositionFor, TraceMap } from '@jridgewell/trace-mapping';

interface WorkerMap {
  frame: RegExp;
  map: TraceMap;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class SourceMaps {
  private readonly maps = new Map<string, WorkerMap>();

  constructor(private readonly cwd = process.cwd()) {}

  /** `worker`'s bundle is the module `module`, built with `sourceMap` (absolute sources). */
  set(worker: string, module: string, sourceMap: string | undefined): void {
    if (!sourceMap) return void this.maps.delete(worker);
    this.maps.set(worker, { frame: new RegExp(`file:///${escape(module)}:(\\d+):(\\d+)`, 'g'), map: new TraceMap(sourceMap) });
  }

  delete(worker: string): void {
    this.maps.delete(worker);
  }

  /** `text` with every position in `worker`'s bundle replaced by the source position it maps to. */
  map(worker: string | null | undefined, text: string): string {
    const entry = worker ? this.maps.get(worker) : undefined;
    if (!entry || !text) return text;
    return text.replace(entry.frame, (whole, line: string, column: string) => {
      const pos = originalPositionFor(entry.map, { line: Number(line), column: Number(column) - 1 });
      if (!pos.source || pos.line === null) return whole;
      return `${this.display(pos.source)}:${pos.line}:${pos.column + 1}`;
    });
  }

  /** Paths under the working directory as relative ones (what an editor's terminal links). */
  private display(source: string): string {
    const path = source.replace(/^file:\/\//, '');
    const rel = relative(this.cwd, path);
    return rel && !rel.startsWith('..') && !rel.startsWith(sep) ? rel : path;
  }
}
