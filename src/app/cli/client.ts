// A client for the admin API, for the CLI. Every failure becomes a message that says what to do:
// no server at the URL, no token, a wrong token, or the server's own explanation of a 4xx.
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8788';

export class AdminError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly body?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AdminError';
  }
}

export class AdminClient {
  readonly url: string;
  private readonly token: string | undefined;

  constructor(url: string, token: string | undefined) {
    this.url = url.replace(/\/+$/, '');
    this.token = token || undefined;
  }

  async request<T = any>(method: string, path: string, body?: BodyInit, headers: Record<string, string> = {}): Promise<T> {
    if (!/^https?:\/\//.test(this.url)) throw new AdminError(`--url must be an http(s) URL of the admin API, such as ${DEFAULT_ADMIN_URL} (got "${this.url}")`);
    if (!this.token) {
      throw new AdminError('no admin token: pass --token or set CINDER_TOKEN to the token `cinder serve` printed at its first start (or its CINDER_ADMIN_TOKEN)');
    }
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, { method, body, headers: { ...headers, authorization: `Bearer ${this.token}` } });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code === 'ECONNREFUSED' ? 'connection refused' : (cause?.message ?? (error as Error).message);
      throw new AdminError(`cannot reach the Cinder admin API at ${this.url} (${why}). Is \`cinder serve\` running? Point --url (or CINDER_URL) at its admin port.`);
    }
    const text = await response.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: a proxy or another server answered
    }
    if (response.ok) {
      if (json === undefined) throw new AdminError(`${this.url} answered ${method} ${path} with something that is not JSON; is --url the admin port of \`cinder serve\`?`);
      return json as T;
    }
    const message = typeof json?.error === 'string' ? json.error : `${response.status} ${response.statusText}`;
    switch (response.status) {
      case 401:
        throw new AdminError(`the admin API at ${this.url} wants a token: pass --token or set CINDER_TOKEN`, 401, json);
      case 403:
        // A valid account token asking for something only the operator (or another account) may do
        // gets the server's own reason; an unknown token gets what to check.
        if (/not valid/.test(message)) throw new AdminError(`the admin API at ${this.url} refused the token: check --token / CINDER_TOKEN against the server's admin token or an account token it made`, 403, json);
        throw new AdminError(message, 403, json);
      default:
        throw new AdminError(message, response.status, json);
    }
  }
}
