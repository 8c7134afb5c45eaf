// Types for the parts of vendored CommonJS packages the sandbox imports by deep path.

declare module 'whatwg-url/lib/url-state-machine.js' {
  /** The URL Standard's URL record. `path` is a string when the URL has an opaque path. */
  export interface URLRecord {
    scheme: string;
    username: string;
    password: string;
    host: string | number | number[] | null;
    port: number | null;
    path: string[] | string;
    query: string | null;
    fragment: string | null;
  }
  type StateOverride = 'scheme start' | 'host' | 'hostname' | 'port' | 'path start' | 'query' | 'fragment';
  const usm: {
    basicURLParse(input: string, options?: { baseURL?: URLRecord | null; url?: URLRecord; stateOverride?: StateOverride }): URLRecord | null;
    serializeURL(url: URLRecord, excludeFragment?: boolean): string;
    serializeURLOrigin(url: URLRecord): string;
    serializeHost(host: string | number | number[]): string;
    serializePath(url: URLRecord): string;
    setTheUsername(url: URLRecord, username: string): void;
    setThePassword(url: URLRecord, password: string): void;
    cannotHaveAUsernamePasswordPort(url: URLRecord): boolean;
    hasAnOpaquePath(url: URLRecord): boolean;
  };
  export default usm;
}

declare module 'whatwg-url/lib/urlencoded.js' {
  const urlencoded: {
    parseUrlencodedString(input: string): [string, string][];
    serializeUrlencoded(tuples: readonly (readonly [string, string])[]): string;
  };
  export default urlencoded;
}

declare module 'punycode/punycode.es6.js' {
  export function decode(input: string): string;
  export function encode(input: string): string;
}
