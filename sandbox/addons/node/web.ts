// The sandbox's Web globals as the node:* modules use them, read when the add-on is installed
// (before any worker code runs, so a worker replacing a global later does not change these).
// Types come from the sandbox's own classes; the values are the globals themselves.
import type { AbortSignal as SandboxAbortSignal } from '../../api/abort.js';
import type { Event as SandboxEvent } from '../../api/events.js';
import type { URL as SandboxURL, URLSearchParams as SandboxURLSearchParams } from '../../api/url.js';
import type { Crypto as SandboxCrypto } from '../../api/crypto.js';
import type { TextDecoder as SandboxTextDecoder, TextEncoder as SandboxTextEncoder } from '../../api/encoding.js';

export type AbortSignal = SandboxAbortSignal;
export type Event = SandboxEvent;
export type URL = SandboxURL;
export type URLSearchParams = SandboxURLSearchParams;
export type Crypto = SandboxCrypto;
export type SubtleCrypto = SandboxCrypto['subtle'];

const g = globalThis as unknown as {
  queueMicrotask(callback: () => void): void;
  performance: { now(): number };
  console: { warn(...args: unknown[]): void };
  URL: typeof SandboxURL;
  URLSearchParams: typeof SandboxURLSearchParams;
  Event: typeof SandboxEvent;
  DOMException: new (message?: string, name?: string) => Error;
  crypto: SandboxCrypto;
  CryptoKey?: abstract new (...args: never[]) => object;
  TextEncoder: typeof SandboxTextEncoder;
  TextDecoder: typeof SandboxTextDecoder;
};

export const queueMicrotask = g.queueMicrotask;
export const performance = g.performance;
export const console = g.console;
export const URL = g.URL;
export const URLSearchParams = g.URLSearchParams;
export const Event = g.Event;
export const DOMException = g.DOMException;
export const crypto = g.crypto;
export const CryptoKey = g.CryptoKey;
export const TextEncoder = g.TextEncoder;
export const TextDecoder = g.TextDecoder;
