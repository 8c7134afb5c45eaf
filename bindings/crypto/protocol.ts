// What crosses the isolate wall for crypto.subtle (the OPS.crypto op), shared by the guest half
// (guest.ts) and the host half (host.ts). Types only.

/** The host's answer to one call: the value, or the error by name (the guest rethrows it as the
 *  Web Crypto error of that name). */
export type CryptoReply = { value: unknown; error?: undefined } | { error: [name: string, message: string] };
