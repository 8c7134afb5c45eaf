// SCAFFOLD — replaced by the fetch-family implementation.
export class Request {
  method: string; url: string; headers: Map<string, string>; _body: Uint8Array | null;
  constructor(url: string, init: { method?: string; headers?: [string, string][]; body?: Uint8Array | null } = {}) {
    this.url = url; this.method = init.method ?? 'GET'; this.headers = new Map(init.headers ?? []); this._body = init.body ?? null;
  }
  async text() { return this._body ? String.fromCharCode(...this._body) : ''; }
}
