// What crosses the wall for an outbound fetch(): the guest's request (sandbox/fetch.ts) and the
// host's answer (bindings/fetch/host.ts). Types only, so both halves can import it.

export interface GuestFetchRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body: string | ArrayBuffer | null;
  /** guest stream id when the body is a ReadableStream: pulled as it is sent */
  bodyStream?: number;
  /** host stream id when the body is a host stream passed on untouched (e.g. request.body) */
  hostStream?: number;
  redirect: 'follow' | 'manual' | 'error';
  /** guest's id for this fetch, so it can abort it */
  fetchId: number;
}

export interface GuestFetchResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  url: string;
  redirected: boolean;
  body: ArrayBuffer | null;
  /** host stream id when the body is large or of unknown length */
  stream?: number;
}
