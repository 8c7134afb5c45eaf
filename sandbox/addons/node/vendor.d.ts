// The npm packages node:* modules are built on, typed as loosely as they are used here (some ship
// no types, others types that reference @types/node, which the sandbox does not load).
declare module 'buffer' {
  const Buffer: any;
  const SlowBuffer: any;
  const kMaxLength: number;
  const INSPECT_MAX_BYTES: number;
}
declare module 'events' {
  const EventEmitter: any;
  export default EventEmitter;
}
declare module 'string_decoder' {
  const StringDecoder: any;
}
declare module 'readable-stream' {
  const mod: any;
  export = mod;
}
declare module 'pathe' {
  export const basename: any, dirname: any, extname: any, format: any, isAbsolute: any, join: any, normalize: any, parse: any,
    relative: any, resolve: any, sep: any, delimiter: any, toNamespacedPath: any, normalizeString: any;
}
declare module 'assert' {
  const assert: any;
  export default assert;
}
declare module 'assert/build/internal/util/comparisons.js' {
  export const isDeepEqual: (a: unknown, b: unknown) => boolean;
  export const isDeepStrictEqual: (a: unknown, b: unknown) => boolean;
}
