// `request.cf` of an incoming request: what one host can know about it (Workers'
// IncomingRequestCfProperties, the fields that do not need Cloudflare's network). The ingress sends
// a few strings (protocol/wall.ts WireRequest.cfFields); the object is made only when a handler
// reads request.cf, so a worker that never does pays for nothing but those strings.

const freeze = Object.freeze;

/** request.cf, not built yet. */
export class LazyCf {
  #fields: string[];
  #acceptEncoding: string | null;
  #built: Readonly<Record<string, unknown>> | undefined;

  constructor(fields: string[], acceptEncoding: string | null) {
    this.#fields = fields;
    this.#acceptEncoding = acceptEncoding;
  }

  value(): Readonly<Record<string, unknown>> {
    if (this.#built) return this.#built;
    const [colo, httpProtocol, tlsVersion, tlsCipher, country] = this.#fields;
    const cf: Record<string, unknown> = { colo: String(colo ?? ''), httpProtocol: String(httpProtocol ?? '') };
    // What the client offered, before anything in front of the worker rewrote it (as on Cloudflare).
    if (this.#acceptEncoding !== null) cf.clientAcceptEncoding = this.#acceptEncoding;
    if (tlsVersion) cf.tlsVersion = String(tlsVersion);
    if (tlsCipher) cf.tlsCipher = String(tlsCipher);
    if (country) cf.country = String(country);
    return (this.#built = freeze(cf));
  }
}
