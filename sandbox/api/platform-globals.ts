// The platform family of Web API globals (encoding, DOMException, base64, structuredClone,
// crypto, events, abort, performance, navigator): every name this family puts on globalThis.
import { AbortController, AbortSignal } from './abort.js';
import { atob, btoa } from './base64.js';
import { Crypto, crypto } from './crypto.js';
import { DOMException } from './dom-exception.js';
import { TextDecoder, TextEncoder } from './encoding.js';
import { CustomEvent, Event, EventTarget } from './events.js';
import { Navigator, Performance, navigator, performance } from './performance.js';
import { structuredClone } from './structured-clone.js';

export const platformGlobals: Record<string, unknown> = {
  TextEncoder,
  TextDecoder,
  DOMException,
  atob,
  btoa,
  structuredClone,
  crypto,
  Crypto,
  Event,
  EventTarget,
  CustomEvent,
  AbortController,
  AbortSignal,
  performance,
  Performance,
  navigator,
  Navigator,
};
