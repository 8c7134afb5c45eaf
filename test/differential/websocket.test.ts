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

/** Connect, send the script (each step waits for `replies` messages), then end with "close". */
function play(baseUrl: string, script: { send: string | Buffer; replies: number }[]): Promise<Transcript> {
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
      } else ws.send('close');
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
});
