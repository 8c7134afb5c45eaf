// Host half of CompressionStream/DecompressionStream: one node:zlib stream per guest codec, kept
// for the isolate's lifetime (isolateState) and fed chunk by chunk. Output per call is bounded so
// a decompression bomb fails in the guest instead of filling the host's memory.
import zlib from 'node:zlib';
import type { OpHandler } from '../../src/runtime/contract.js';
import { OPS } from '../../protocol/wall.js';

/** Most output one write may produce before the codec is failed (the guest's heap is smaller). */
const MAX_OUTPUT_PER_CALL = 64 * 1024 * 1024;
/** Codecs one isolate may hold open at once. */
const MAX_OPEN = 256;

interface Codec {
  stream: zlib.Gzip | zlib.Gunzip | zlib.Deflate | zlib.Inflate | zlib.DeflateRaw | zlib.InflateRaw;
  outputs: Buffer[];
  size: number;
  error: Error | null;
}

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

function failure(codec: Codec, mode: string): TypeError {
  const message = codec.error?.message ?? 'unknown error';
  return new TypeError(mode === 'decompress' ? `Decompression failed: ${message}` : `Compression failed: ${message}`);
}

export const compressionOp: OpHandler = async (call, args) => {
  const [action, rawId, mode, format, chunk] = args as [string, number, string, string, ArrayBuffer | undefined];
  const codecs = call.isolateState(OPS.compression, () => new Map<number, Codec>());
  const id = Number(rawId);
  let codec = codecs.get(id);
  if (!codec) {
    if (codecs.size >= MAX_OPEN) throw new RangeError('too many open compression streams');
    const stream = create(String(mode), String(format));
    const created: Codec = { stream, outputs: [], size: 0, error: null };
    stream.on('data', (data: Buffer) => {
      created.outputs.push(data);
      created.size += data.length;
      if (created.size > MAX_OUTPUT_PER_CALL) stream.destroy(new RangeError('output too large'));
    });
    stream.on('error', (error) => (created.error = error));
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
