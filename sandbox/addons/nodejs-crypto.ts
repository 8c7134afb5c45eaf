// node:crypto (hashes, HMAC, KDFs, random, AES, and the asymmetric half: keys, signatures, RSA
// encryption, ECDH, DH, scrypt): kept apart from nodejs-compat because the curves make it the
// largest part, and only workers importing node:crypto pay for it. Its Buffer is nodejs-compat's
// (scripts/node-compat-aliases.mjs).
import { EXPORT_NAMES } from './node/export-names.js';
import type { AddonExports } from '../../protocol/addons.js';

declare const require: (path: string) => Record<string, unknown>;

/** The namespace, from three parts evaluated on first read: hashes/ciphers/random (crypto.js),
 *  keys and signatures (crypto-keys.js) and primes/finite-field DH (crypto-dh.js). The loader's
 *  module shim reads every export when a worker imports node:crypto, so all three are evaluated
 *  then; the expensive part, each curve's arithmetic and tables, is made on first use instead
 *  (crypto-keys.ts). */
function cryptoNamespace(): object {
  const parts: [readonly string[], () => Record<string, unknown>][] = [
    [EXPORT_NAMES.crypto, () => require('./node/crypto.js')],
    [EXPORT_NAMES['crypto-keys'], () => require('./node/crypto-keys.js')],
    [EXPORT_NAMES['crypto-dh'], () => require('./node/crypto-dh.js')],
  ];
  const namespace: Record<string, unknown> = {};
  let all: Record<string, unknown> | null = null;
  for (const [names, load] of parts) {
    for (const name of names) {
      if (name === 'default') continue;
      Object.defineProperty(namespace, name, { enumerable: true, get: () => load()[name] });
    }
  }
  Object.defineProperty(namespace, 'default', {
    enumerable: true,
    get: () => {
      if (all) return all;
      all = {};
      for (const [names, load] of parts) for (const name of names) if (name !== 'default') all[name] = load()[name];
      return all;
    },
  });
  return namespace;
}

export default function install(): AddonExports {
  const crypto = cryptoNamespace();
  return { modules: { 'node:crypto': crypto, crypto } };
}
