// `request.cf` of an incoming request: what one host can know about it (Workers'
// IncomingRequestCfProperties, the fields that do not need Cloudflare's network). The ingress sends
// a few strings (protocol/wall.ts WireRequest.cfFields); the object is made only when a handler
// reads request.cf, so a worker that never does pays for nothing but those strings.

const freeze = Object.freeze;

/** Cloudflare's visitor location headers and the request.cf field each fills, in pairs. */
const LOCATION_FIELDS = [
  'cf-ipcity', 'city',
  'cf-ipcontinent', 'continent',
  'cf-iplatitude', 'latitude',
  'cf-iplongitude', 'longitude',
  'cf-region', 'region',
  'cf-region-code', 'regionCode',
  'cf-metro-code', 'metroCode',
  'cf-postal-code', 'postalCode',
  'cf-timezone', 'timezone',
];

/** The European Union's members (ISO 3166-1 alpha-2): cf.isEUCountry is "1" for these. */
const EU_COUNTRIES = ['AT', 'BE', 'BG', 'HR', 'CY', 'CZ', 'DK', 'EE', 'FI', 'FR', 'DE', 'GR', 'HU', 'IE', 'IT', 'LV', 'LT', 'LU', 'MT', 'NL', 'PL', 'PT', 'RO', 'SK', 'SI', 'ES', 'SE'];

/** request.cf, not built yet. */
export class LazyCf {
  #fields: string[];
  #headers: [string, string][];
  #built: Readonly<Record<string, unknown>> | undefined;

  /** `headers`: the request's header pairs as they came (read only when cf is) */
  constructor(fields: string[], headers: [string, string][]) {
    this.#fields = fields;
    this.#headers = headers;
  }

  value(): Readonly<Record<string, unknown>> {
    if (this.#built) return this.#built;
    const [colo, httpProtocol, tlsVersion, tlsCipher, country] = this.#fields;
    const cf: Record<string, unknown> = { colo: String(colo ?? ''), httpProtocol: String(httpProtocol ?? '') };
    // What the client offered, before anything in front of the worker rewrote it (as on Cloudflare).
    const acceptEncoding = headerValue(this.#headers, 'accept-encoding');
    if (acceptEncoding !== null) cf.clientAcceptEncoding = acceptEncoding;
    if (tlsVersion) cf.tlsVersion = String(tlsVersion);
    if (tlsCipher) cf.tlsCipher = String(tlsCipher);
    if (country) {
      cf.country = String(country);
      if (EU_COUNTRIES.includes(cf.country as string)) cf.isEUCountry = '1';
    }
    // A trusted proxy's visitor location headers (the ingress drops them from anyone else).
    for (let i = 0; i < LOCATION_FIELDS.length; i += 2) {
      const value = headerValue(this.#headers, LOCATION_FIELDS[i]);
      if (value !== null && value !== '') cf[LOCATION_FIELDS[i + 1]] = value;
    }
    return (this.#built = freeze(cf));
  }
}

function headerValue(headers: [string, string][], lowerName: string): string | null {
  for (let i = 0; i < headers.length; i++) {
    const name = headers[i][0];
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return headers[i][1];
  }
  return null;
}
