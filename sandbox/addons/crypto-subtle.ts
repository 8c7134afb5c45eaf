// crypto.subtle (Web Crypto, delegated to the host: bindings/crypto), with the CryptoKey and
// SubtleCrypto globals and workerd's crypto.DigestStream. An add-on: most workers never use it.
import { CryptoKey, DigestStream, SubtleCrypto, subtle } from '../../bindings/crypto/guest.js';
import { installSubtle } from '../api/crypto.js';

export default function install() {
  installSubtle(subtle, DigestStream);
  return { globals: { CryptoKey, SubtleCrypto } };
}
