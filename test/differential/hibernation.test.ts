// The WebSocket hibernation API, differential: the same probe (workers/hibernation-probe.js) in
// Cinder and in workerd (a Durable Object namespace, in-memory storage), two real `ws` clients
// playing the same script against each, and the transcripts compared: welcome (tags deduplicated,
// attachment), the auto-response, getWebSockets/getTags/attachments, limits' errors, a broadcast,
// webSocketClose of one client seen by the other, and the object's own close.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPATIBILITY_DATE, runWorkerd } from './harness.js';
import { multipart, startCinder, type TestCinder } from '../control/helpers.js';
import { connect, type Client } from '../websocket/helpers.js';
import { freePort } from '../helpers/serve-process.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const probe = readFileSync(join(root, 'test/differential/workers/hibernation-probe.js'), 'utf8');

let workerd: { port: number; close(): Promise<void> };
let cinder: TestCinder;

async function startWorkerd(): Promise<typeof workerd> {
  const dir = mkdtempSync(join(tmpdir(), 'cinder-hibernation-differential-'));
  const port = await freePort();
  writeFileSync(join(dir, 'probe.js'), probe);
  writeFileSync(
    join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "probe", worker = .probe)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "probe")],
);
const probe :Workerd.Worker = (
  modules = [(name = "probe.js", esModule = embed "probe.js")],
  compatibilityDate = "${COMPATIBILITY_DATE}",
  durableObjectNamespaces = [(className = "Room", uniqueKey = "cinder-differential-hibernation"), (className = "Classic", uniqueKey = "cinder-differential-classic")],
  durableObjectStorage = (inMemory = void),
  bindings = [(name = "ROOM", durableObjectNamespace = "Room"), (name = "CLASSIC", durableObjectNamespace = "Classic")],
);
`,
  );
  return { port, ...(await runWorkerd(dir, [port])) };
}

beforeAll(async () => {
  [workerd, cinder] = await Promise.all([startWorkerd(), startCinder()]);
  const res = await cinder.admin('PUT', '/workers/probe', {
    body: multipart(
      {
        main_module: 'probe.js',
        bindings: [
          { type: 'durable_object_namespace', name: 'ROOM', class_name: 'Room' },
          { type: 'durable_object_namespace', name: 'CLASSIC', class_name: 'Classic' },
        ],
        migrations: { new_tag: 'v1', new_classes: ['Room', 'Classic'] },
        // workerd has no CPU limit; the probe's first events use up to ~29 ms of Cinder's 50 ms
        // default here, and this suite compares answers, not limits.
        limits: { cpu_ms: 1000 },
      },
      { 'probe.js': probe },
    ),
  });
  expect(res.status, res.text).toBe(201);
}, 60_000);

afterAll(async () => {
  await workerd?.close();
  await cinder?.close({ cleanup: true });
});

function text(message: string | Buffer): string {
  return typeof message === 'string' ? message : `bytes ${[...message].join(',')}`;
}

/** The script, against one server: what each client saw, in order. */
async function play(port: number): Promise<{ ann: string[]; bob: string[] }> {
  const ann: Client = await connect(port, 'probe', '/?room=h&user=ann');
  await ann.received(1);
  const bob: Client = await connect(port, 'probe', '/?room=h&user=bob');
  await bob.received(1);
  let seen = 1;
  const ask = async (message: string | Buffer) => {
    ann.send(message);
    await ann.received(++seen);
  };
  await ask('ping');
  await ask('whoami');
  await ask('update');
  await ask('errors');
  await ask(Buffer.from([1, 2, 3]));
  await ask('hello');
  await bob.received(2);
  bob.ws.close(4000, 'bye');
  const bobClosed = await bob.closed;
  await ann.received(++seen);
  await ask('count');
  ann.send('close');
  const annClosed = await ann.closed;
  return {
    ann: [...ann.messages.map(text), `close ${annClosed.code} ${annClosed.reason}`],
    bob: [...bob.messages.map(text), `close ${bobClosed.code} ${bobClosed.reason}`],
  };
}

/** The room without hibernation (accept() and listeners): the same script, shorter. */
async function playClassic(port: number): Promise<{ ann: string[]; bob: string[] }> {
  const ann: Client = await connect(port, 'probe', '/classic?room=c&user=ann');
  await ann.received(1);
  const bob: Client = await connect(port, 'probe', '/classic?room=c&user=bob');
  await bob.received(1);
  ann.send('hi');
  await Promise.all([ann.received(2), bob.received(2)]);
  bob.send('hello');
  await Promise.all([ann.received(3), bob.received(3)]);
  bob.ws.close(4000, 'bye');
  const bobClosed = await bob.closed;
  await ann.received(4);
  ann.send('close');
  const annClosed = await ann.closed;
  return {
    ann: [...ann.messages.map(text), `close ${annClosed.code} ${annClosed.reason}`],
    bob: [...bob.messages.map(text), `close ${bobClosed.code} ${bobClosed.reason}`],
  };
}

describe('differential: WebSocket hibernation against workerd', () => {
  it('plays the same transcript without hibernation (accept() in the object)', async () => {
    const [ours, theirs] = [await playClassic(cinder.server.port), await playClassic(workerd.port)];
    if (process.env.SHOW_TRANSCRIPT) console.log(JSON.stringify(theirs, null, 1));
    expect(theirs.ann.length).toBe(5);
    expect(ours).toEqual(theirs);
  });

  it('plays the same transcript', async () => {
    const [ours, theirs] = [await play(cinder.server.port), await play(workerd.port)];
    expect(theirs.ann.length).toBeGreaterThan(8);
    if (process.env.SHOW_TRANSCRIPT) console.log(JSON.stringify(theirs, null, 1));
    expect(ours).toEqual(theirs);
  });
});
