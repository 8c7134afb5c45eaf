// The host log's destination: pino's asynchronous one (sonic-boom), with one per-line cost taken
// out. sonic-boom's `write` appends each line to the last pending chunk and, to decide whether
// the chunk is full, measures the chunk's UTF-8 length again on every line (`Buffer.byteLength`
// of a string that grows by one line a time, flattened each time: work proportional to the
// lines pending, on every line). Under load the access log leaves ~60 lines pending between two
// writes, and that re-measuring was ~4% of the serving thread's time (perf, bench/README.md,
// issue 24 round 6). This `write` keeps the byte length of the chunk it last appended to. It does
// what sonic-boom 4's own does otherwise (the same fields, in the same order), so lines, their
// order and when they are written do not change.
import pino from 'pino';

/** The fields of a sonic-boom instance in its string mode that `write` reads or sets. */
interface SonicBoomStrings {
  write(data: string): boolean;
  destroyed: boolean;
  _bufs: string[];
  _len: number;
  _hwm: number;
  _writing: boolean;
  _writingBuf: unknown;
  _actualWrite(): void;
  maxLength: number;
  maxWrite: number;
  minLength: number;
  emit(event: string, data: unknown): boolean;
}

function looksLikeSonicBoomStrings(dest: unknown): dest is SonicBoomStrings {
  const d = dest as Partial<SonicBoomStrings>;
  return (
    Array.isArray(d._bufs) && typeof d._len === 'number' && typeof d._hwm === 'number' && typeof d._writingBuf === 'string' &&
    typeof d._actualWrite === 'function' && typeof d.maxWrite === 'number' && typeof d.minLength === 'number' && typeof d.maxLength === 'number'
  );
}

/** An asynchronous pino destination (stdout unless `dest` names a file or descriptor). */
export function logDestination(dest?: string | number): pino.DestinationStream {
  const stream = pino.destination({ dest: dest ?? 1, sync: false });
  if (looksLikeSonicBoomStrings(stream)) stream.write = measuredOnce(stream);
  return stream;
}

function measuredOnce(sonic: SonicBoomStrings): (data: string) => boolean {
  // The chunk last appended to and its byte length. Compared by ===: the same string object, or
  // (after sonic-boom moved its chunks) a string of equal content, hence of equal byte length.
  let lastChunk = '';
  let lastBytes = 0;
  return function write(data: string): boolean {
    if (sonic.destroyed) throw new Error('SonicBoom destroyed');
    data = '' + data;
    const dataLen = Buffer.byteLength(data);
    const len = sonic._len + dataLen;
    const bufs = sonic._bufs;
    if (sonic.maxLength && len > sonic.maxLength) {
      sonic.emit('drop', data);
      return sonic._len < sonic._hwm;
    }
    const last = bufs.length === 0 ? null : bufs[bufs.length - 1];
    const lastLen = last === null ? 0 : last === lastChunk ? lastBytes : Buffer.byteLength(last);
    if (last === null || lastLen + dataLen > sonic.maxWrite) {
      bufs.push(data);
      lastChunk = data;
      lastBytes = dataLen;
    } else {
      lastChunk = last + data;
      lastBytes = lastLen + dataLen;
      bufs[bufs.length - 1] = lastChunk;
    }
    sonic._len = len;
    if (!sonic._writing && sonic._len >= sonic.minLength) sonic._actualWrite();
    return sonic._len < sonic._hwm;
  };
}

/** Resolves once `dest` (a sonic-boom) has no write in flight and nothing pending, or after
 *  `timeoutMs` (a reader that stopped reading must not hold an exit). Other destinations at once. */
export async function settleDestination(dest: unknown, timeoutMs: number): Promise<void> {
  const sonic = dest as Partial<SonicBoomStrings> & { flushSync?: () => void };
  if (typeof sonic?._writing !== 'boolean') return;
  const deadline = Date.now() + timeoutMs;
  // Each finished write starts the next while lines are pending: _writing falls when all are out.
  while (sonic._writing && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
  if (!sonic._writing && !sonic.destroyed) {
    try {
      sonic.flushSync?.();
    } catch {
      // nothing pending, or the reader is gone: nothing more can be written
    }
  }
}
