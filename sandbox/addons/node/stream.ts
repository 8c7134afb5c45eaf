// node:stream and node:stream/promises: readable-stream (the npm
// mirror of Node's own streams, kept in step with Node's source); its Buffer, EventEmitter,
// StringDecoder and process.nextTick are node:buffer's, node:events', node:string_decoder's and

// sandbox's Web streams.
import * as readable from 'readable-stream';

const streamModule = readable as unknown as Record<string, unknown> & { promises: Record<string, unknown> };
const Stream = (streamModule.Stream ?? streamModule.default ?? streamModule) as Record<string, unknown>;

function pick(source: Record<string, unknown>, names: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of names) if (source[name] !== undefined) out[name] = source[name];
  return out;
}

const STREAM_EXPORTS = [
  'Readable', 'Writable', 'Duplex', 'Transform', 'PassThrough', 'Stream', 'pipeline', 'finished', 'addAbortSignal',
  'compose', 'destroy', 'isDisturbed', 'isErrored', 'isReadable', 'duplexPair', 'getDefaultHighWaterMark', 'setDefaultHighWaterMark',
];

export function streamNamespace(): Record<string, unknown> {
  const named = pick(Stream, STREAM_EXPORTS);
  named.Stream = Stream;
  named.promises = Stream.promises;
  return { ...named, default: Stream };
}

export function streamPromisesNamespace(): Record<string, unknown> {
  const promises = Stream.promises as Record<string, unknown>;
  return { pipeline: promises.pipeline, finished: promises.finished, default: promises };
}

