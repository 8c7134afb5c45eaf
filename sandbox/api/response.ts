// SCAFFOLD — replaced by the fetch-family implementation.
export class Response {
  status: number; statusText = ''; headers: Map<string, string>; _body: string | null;
  constructor(body?: string | null, init: { status?: number; headers?: [string, string][] } = {}) {
    this._body = body ?? null; this.status = init.status ?? 200; this.headers = new Map(init.headers ?? []);
  }
}
