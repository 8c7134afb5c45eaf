// Every Web API global the sandbox defines, by name. Split in two families so that each file
// stays about one thing: the fetch family (Headers, Request, Response, bodies, streams, Blob,
// FormData, URL) and the platform family (encoding, events, abort, crypto, clone, timers' peers).
import { fetchGlobals } from './fetch-globals.js';
import { platformGlobals } from './platform-globals.js';

export const webGlobals: Record<string, unknown> = { ...platformGlobals, ...fetchGlobals };
