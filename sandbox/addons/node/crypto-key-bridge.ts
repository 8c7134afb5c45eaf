// Lets crypto.ts (Hmac, ciphers, HKDF) take a secret KeyObject where Node takes one, without
// evaluating crypto-keys.ts (the curves) for workers that never make a KeyObject: crypto-keys.ts,
// which alone makes KeyObjects, registers its reader here when it is evaluated.
let reader: ((key: unknown) => Uint8Array | undefined) | null = null;

export function setSecretKeyReader(read: (key: unknown) => Uint8Array | undefined): void {
  reader = read;
}

/** The bytes of a secret KeyObject; undefined for anything else. */
export function secretKeyBytes(key: unknown): Uint8Array | undefined {
  return reader ? reader(key) : undefined;
}
