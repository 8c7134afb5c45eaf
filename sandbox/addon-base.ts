// The base sandbox's modules that add-ons may import (see protocol/addons.ts). An add-on is
// bundled on its own, but an import of one of these resolves to the base bundle's own module
// instance (scripts/build-sandbox.mjs rewrites it to a lookup in this table): one bridge, one
// invocation registry, one Response class, so `instanceof` and shared state work across the two.
// Keys are paths from the package root without extension. The build refuses an add-on importing a
// base module missing here, naming it: add the line.
import * as bridge from './bridge.js';
import * as env from './env.js';
import * as invocation from './invocation.js';
import * as wire from './wire.js';
import * as hostStream from './host-stream.js';
import * as reportError from './report-error.js';
import * as brand from './api/brand.js';
import * as streams from './api/streams.js';
import * as encoding from './api/encoding.js';
import * as request from './api/request.js';
import * as response from './api/response.js';
import * as headers from './api/headers.js';
import * as structuredClone from './api/structured-clone.js';
import * as domException from './api/dom-exception.js';
import * as inspect from './api/inspect.js';
import * as asyncContext from './async-context.js';
import * as addons from './addons.js';
import * as events from './api/events.js';
import * as blob from './api/blob.js';
import * as webSocketHooks from './websocket-hooks.js';
import * as idl from './api/idl.js';
import * as crypto from './api/crypto.js';
import * as addonEvents from './addon-events.js';

export const BASE_MODULES: Record<string, object> = {
  'sandbox/bridge': bridge,
  'sandbox/env': env,
  'sandbox/invocation': invocation,
  'sandbox/wire': wire,
  'sandbox/host-stream': hostStream,
  'sandbox/report-error': reportError,
  'sandbox/api/brand': brand,
  'sandbox/api/streams': streams,
  'sandbox/api/encoding': encoding,
  'sandbox/api/request': request,
  'sandbox/api/response': response,
  'sandbox/api/headers': headers,
  'sandbox/api/structured-clone': structuredClone,
  'sandbox/api/dom-exception': domException,
  'sandbox/api/inspect': inspect,
  'sandbox/async-context': asyncContext,
  'sandbox/addons': addons,
  'sandbox/api/events': events,
  'sandbox/api/blob': blob,
  'sandbox/websocket-hooks': webSocketHooks,
  'sandbox/api/idl': idl,
  'sandbox/api/crypto': crypto,
  'sandbox/addon-events': addonEvents,
};
