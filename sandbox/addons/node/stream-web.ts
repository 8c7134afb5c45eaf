// node:stream/web: the sandbox's own Web streams, under Node's module name.
function pick(source: Record<string, unknown>, names: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of names) if (source[name] !== undefined) out[name] = source[name];
  return out;
}

const WEB_STREAM_NAMES = [
  'ReadableStream', 'ReadableStreamDefaultReader', 'ReadableStreamBYOBReader', 'ReadableStreamBYOBRequest', 'ReadableByteStreamController',
  'ReadableStreamDefaultController', 'TransformStream', 'TransformStreamDefaultController', 'WritableStream', 'WritableStreamDefaultWriter',
  'WritableStreamDefaultController', 'ByteLengthQueuingStrategy', 'CountQueuingStrategy', 'TextEncoderStream', 'TextDecoderStream',
  'CompressionStream', 'DecompressionStream',
];

export function streamWebNamespace(): Record<string, unknown> {
  const named = pick(globalThis as unknown as Record<string, unknown>, WEB_STREAM_NAMES);
  return { ...named, default: { ...named } };
}
