// node:crypto's digests (MD5, SHA-1, SHA-224/256, SHA-384/512) for the synchronous
// createHash/createHmac/pbkdf2Sync, on @noble/hashes (the add-on already carries it for keys and
// scrypt). They run inside the isolate, so their CPU is the worker's own and counted by its CPU
// limit, with no host crossing per update; the tests compare every digest with Node's.
import { md5, sha1 } from '@noble/hashes/legacy.js';
import { sha224, sha256, sha384, sha512 } from '@noble/hashes/sha2.js';

export interface HashCore {
  readonly blockSize: number;
  readonly outputSize: number;
  update(bytes: Uint8Array): void;
  digest(): Uint8Array;
  clone(): HashCore;
}

/** What each @noble/hashes function makes: an incremental hash with these members. */
interface NobleHash {
  blockLen: number;
  outputLen: number;
  update(bytes: Uint8Array): unknown;
  digest(): Uint8Array;
  clone(): NobleHash;
}

class NobleCore implements HashCore {
  constructor(private readonly hash: NobleHash) {}
  get blockSize(): number {
    return this.hash.blockLen;
  }
  get outputSize(): number {
    return this.hash.outputLen;
  }
  update(bytes: Uint8Array): void {
    this.hash.update(bytes);
  }
  digest(): Uint8Array {
    return this.hash.digest();
  }
  clone(): HashCore {
    return new NobleCore(this.hash.clone());
  }
}

const FACTORIES: Record<string, () => HashCore> = {
  md5: () => new NobleCore(md5.create()),
  sha1: () => new NobleCore(sha1.create()),
  sha224: () => new NobleCore(sha224.create()),
  sha256: () => new NobleCore(sha256.create()),
  sha384: () => new NobleCore(sha384.create()),
  sha512: () => new NobleCore(sha512.create()),
};
const ALIASES: Record<string, string> = {
  'sha-1': 'sha1', 'sha-224': 'sha224', 'sha-256': 'sha256', 'sha-384': 'sha384', 'sha-512': 'sha512',
  rsa_md5: 'md5', 'rsa-md5': 'md5', 'rsa-sha1': 'sha1', 'rsa-sha224': 'sha224', 'rsa-sha256': 'sha256', 'rsa-sha384': 'sha384', 'rsa-sha512': 'sha512',
  'dsa-sha': 'sha1', 'dsa-sha1': 'sha1', 'ecdsa-with-sha1': 'sha1',
};

/** The canonical name of a digest algorithm, or undefined when it is not one of ours. */
export function hashName(algorithm: string): string | undefined {
  const lower = String(algorithm).toLowerCase();
  const name = ALIASES[lower] ?? lower;
  return name in FACTORIES ? name : undefined;
}

export function newHash(name: string): HashCore {
  return FACTORIES[name]();
}

/** What getHashes() answers: workerd's list in workerd's order, less md4 and md5-sha1 (not here). */
export const HASH_NAMES = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'RSA-MD5', 'RSA-SHA1', 'RSA-SHA224', 'RSA-SHA256', 'RSA-SHA384', 'RSA-SHA512', 'DSA-SHA', 'DSA-SHA1', 'ecdsa-with-SHA1'];
