// Ed25519 and X25519 alone, for crypto-keys.ts to evaluate on first use (a lazily required module
// of its own: esbuild keeps only these two of @noble/curves/ed25519.js's exports).
export { ed25519, x25519 } from '@noble/curves/ed25519.js';
