// WebSockets in the differential harness: the same probe worker runs in Cinder and in workerd, a
// real `ws` client plays the same script against each, and the transcripts (handshake headers
// the worker set, messages, close code and reason) must agree.
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../helpers/server.js';
import { bundleExamples, startCinder, startWorkerd, type Workerd } from './harness.js';

const PROBE = { name: 'websocket-probe', entry: 'test/differential/workers/websocket-probe.js' };

interface Transcript {
  probeHeader: string | undefined;
  events: string[];
}

/** Connect, send the script (each step waits for `replies` messages), then end with "close" (the
 *  worker closes) or, given `clientClose`, close from this side. */
function play(baseUrl: string, script: { send: string | Buffer; replies: number }[], clientClose?: [number, string]): Promise<Transcript> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(baseUrl.replace('http:', 'ws:') + '/', { headers: { host: `${PROBE.name}.test` }, perMessageDeflate: false });
    const events: string[] = [];
    let probeHeader: string | undefined;
    let step = -1;
    let waiting = 1; // the greeting sent before the response
    const next = () => {
      step++;
      if (step < script.length) {
        waiting = script[step].replies;
        ws.send(script[step].send);
      } else if (clientClose) ws.close(...clientClose);
      else ws.send('close');
    };
    ws.on('upgrade', (res) => (probeHeader = res.headers['x-probe'] as string | undefined));
    ws.on('message', (data, isBinary) => {
      events.push(isBinary ? `bytes ${[...(data as Buffer)].join(',')}` : `text ${data.toString()}`);
      if (--waiting === 0) next();
    });
    ws.on('close', (code, reason) => {
      events.push(`close ${code} ${reason.toString()}`);
      resolve({ probeHeader, events });
    });
    ws.on('error', reject);
  });
}

const SCRIPT = [
  { send: 'plain text', replies: 1 },
  { send: Buffer.from([1, 2, 3]), replies: 2 },
  { send: 'state', replies: 1 },
  { send: 'shape', replies: 1 },
];

describe('differential: WebSockets against workerd', () => {
  let cinder: TestServer;
  let workerd: Workerd;
  beforeAll(async () => {
    const bundled = await bundleExamples([PROBE]);
    [cinder, workerd] = await Promise.all([startCinder(bundled), startWorkerd(bundled)]);
  }, 60_000);
  afterAll(async () => {
    await cinder?.close();
    await workerd?.close();
  });

  it('gives the same transcript', async () => {
    const [ours, theirs] = await Promise.all([play(cinder.url, SCRIPT), play(workerd.url(PROBE.name), SCRIPT)]);
    expect(ours).toEqual(theirs);
  });

  it('closes from the client side the same way, and the worker sees the same close event', async () => {
    const closing = async (url: string) => {
      const first = await play(url, [{ send: 'one', replies: 1 }], [4321, 'client says bye']);
      const second = await play(url, [{ send: 'lastclose', replies: 1 }]);
      return { first, second };
    };
    const [ours, theirs] = await Promise.all([closing(cinder.url), closing(workerd.url(PROBE.name))]);
    // What the worker saw agrees, and so does the first connection up to its close frame.
    expect(ours.second).toEqual(theirs.second);
    expect(ours.first.events.slice(0, -1)).toEqual(theirs.first.events.slice(0, -1));
    // A documented difference (docs/compat.md): the host answers the client's close frame at once
    // with the client's own code, as workerd does with web_socket_auto_reply_to_close; workerd
    // without that flag (this compatibility date) waits and sends the worker's close().
    expect(theirs.first.events.at(-1)).toBe('close 1000 answered');
    expect(ours.first.events.at(-1)).toBe('close 4321 client says bye');
  });
});
