// Host half of CompressionStream/DecompressionStream: one node:zlib stream per guest codec, kept
// for the isolate's lifetime (isolateState) and fed chunk by chunk. Output is bounded per call and
// per stream, by the worker's own memory limit: what one call produces is held in the host until
// the guest takes it, and all of it must fit in the guest's heap anyway. A decompression bomb
// fails in the guest as a RangeError instead of filling the host's memory or the isolate's.
import zlib from 'node:zlib';
import type { OpHandler } from '../../src/runtime/contract.js';
import { OPS } from '../../protocol/wall.js';

const MB = 1024 * 1024;
/** Most output one write may produce: a quarter of the worker's memory limit, at most 16 MB. */
export const maxOutputPerCall = (memoryMb: number) => Math.min(16 * MB, Math.floor((memoryMb * MB) / 4));
/** Most output one stream may produce in all (twice the memory limit, at least 64 MB): bounds the
 *  host's zlib work one small input can cause, even when the guest drops the output as it goes. */
export const maxOutputPerStream = (memoryMb: number) => Math.max(64 * MB, 2 * memoryMb * MB);
/** Codecs one isolate may hold open at once. */
const MAX_OPEN = 256;

interface Codec {
  stream: zlib.Gzip | zlib.Gunzip | zlib.Deflate | zlib.Inflate | zlib.DeflateRaw | zlib.InflateRaw;
  outputs: Buffer[];
  /** output waiting for the guest to take it */
  size: number;
  /** output over the stream's life */
  total: number;
  error: Error | null;
}

class OutputTooLarge extends RangeError {}

function create(mode: string, format: string): Codec['stream'] {
  const compress = mode === 'compress';
  switch (format) {
    case 'gzip':
      return compress ? zlib.createGzip() : zlib.createGunzip();
    case 'deflate':
      return compress ? zlib.createDeflate() : zlib.createInflate();
    case 'deflate-raw':
      return compress ? zlib.createDeflateRaw() : zlib.createInflateRaw();
    default:
      throw new TypeError(`unsupported compression format "${format}"`);
  }
}

function take(codec: Codec): ArrayBuffer[] {
  const out = codec.outputs.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
  codec.outputs = [];
  codec.size = 0;
  return out;
}

function failure(codec: Codec, mode: string): TypeError | RangeError {
  const message = codec.error?.message ?? 'unknown error';
  const prefix = mode === 'decompress' ? 'Decompression failed' : 'Compression failed';
  return codec.error instanceof OutputTooLarge ? new RangeError(`${prefix}: ${message}`) : new TypeError(`${prefix}: ${message}`);
}

export const compressionOp: OpHandler = async (call, args) => {
  const [action, rawId, mode, format, chunk] = args as [string, number, string, string, ArrayBuffer | undefined];
  const codecs = call.isolateState(OPS.compression, () => new Map<number, Codec>());
  const id = Number(rawId);
  let codec = codecs.get(id);
  if (!codec) {
    if (codecs.size >= MAX_OPEN) throw new RangeError('too many open compression streams');
    const stream = create(String(mode), String(format));
    const created: Codec = { stream, outputs: [], size: 0, total: 0, error: null };
    const perCall = maxOutputPerCall(call.limits.memoryMb);
    const perStream = maxOutputPerStream(call.limits.memoryMb);
    stream.on('data', (data: Buffer) => {
      if (created.error) return;
      created.outputs.push(data);
      created.size += data.length;
      created.total += data.length;
      if (created.size > perCall) created.error = new OutputTooLarge(`one chunk produced more than ${perCall} bytes of output (the limit per chunk for this worker's memory)`);
      else if (created.total > perStream) created.error = new OutputTooLarge(`the stream produced more than ${perStream} bytes of output (the limit per stream for this worker's memory)`);
      if (created.error) {
        created.outputs = [];
        created.size = 0;
        stream.destroy(created.error);
      }
    });
    stream.on('error', (error) => (created.error ??= error));
    codecs.set(id, created);
    codec = created;
  }
  const current = codec;
  try {
    if (action === 'write') {
      if (!(chunk instanceof ArrayBuffer)) throw new TypeError('compression: chunk must be bytes');
      await new Promise<void>((resolve, reject) => {
        // A corrupt input errors the stream; the write callback may then never run.
        const onError = (error: Error) => reject(error);
        current.stream.once('error', onError);
        current.stream.write(Buffer.from(chunk), (error) => {
          current.stream.off('error', onError);
          if (error || current.error) reject(error ?? current.error);
          else resolve();
        });
      });
      if (current.error) throw current.error;
      return take(current);
    }
    if (action === 'end') {
      await new Promise<void>((resolve, reject) => {
        current.stream.once('end', resolve);
        current.stream.once('error', reject);
        current.stream.end();
        current.stream.resume();
      });
      codecs.delete(id);
      return take(current);
    }
    throw new TypeError(`compression: unknown action ${action}`);
  } catch (error) {
    codecs.delete(id);
    current.stream.destroy();
    current.error ??= error as Error;
    throw failure(current, String(mode));
  }
};
