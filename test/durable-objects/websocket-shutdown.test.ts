// A node stopping with relayed WebSockets open (`cinder serve --processes 2` without Redis, the
// chat room of hibernation.test.ts): every serving process sends its clients 1001 "server shutting
// down", its own and those whose socket it relays to the room's holder, and then exits. The holder
// used to hang at shutdown: its internal endpoint waited on the upgraded connections it carried
// for the other process, so the supervisor had to kill it and its own clients never got a 1001.
import { afterAll, describe, expect, it } from 'vitest';
import { deploy, startNode, stopNode, until, type Node } from '../scale/helpers.js';
import { connect, type Client } from '../websocket/helpers.js';
import { CHAT, CHAT_METADATA } from './chat-room.js';

let node: Node | null = null;

afterAll(async () => {
  if (node) await stopNode(node);
});

const relayedBy = (n: Node) => [...(n.stdout + n.stderr).matchAll(/"pid":(\d+)[^\n]*Durable Object WebSocket relayed/g)].map((m) => Number(m[1]));

/** A node of two processes serving the chat room `room` to six clients, some of them relayed to
 *  the object's holder by the other process and some the holder's own. */
async function chatRoomOverTwoProcesses(room: string): Promise<{ started: Node; clients: Client[] }> {
  node = await startNode({ processes: 2, env: { CINDER_LOG_LEVEL: 'debug' } });
  const started = node;
  const deployed = await deploy(started, 'chat', CHAT, CHAT_METADATA);
  expect(deployed.status, deployed.text).toBe(201);
  const port = Number(new URL(started.url).port);
  const clients: Client[] = [];
  for (let i = 0; i < 6; i++) {
    const client = await connect(port, 'chat', `/?room=${room}&user=u${i}`);
    await client.received(1);
    clients.push(client);
  }
  const relayed = relayedBy(started).length;
  expect(relayed).toBeGreaterThan(0);
  expect(relayed).toBeLessThan(clients.length);
  return { started, clients };
}

describe('stopping a node with relayed Durable Object WebSockets open', () => {
  it('closes every client with 1001 and every process exits on its own', async () => {
    const { started, clients } = await chatRoomOverTwoProcesses('stop');

    const code = await stopNode(started, false);
    node = null;
    const closes = await Promise.all(clients.map((client) => client.closed));
    expect(closes.filter((c) => c.code === 1001 && c.reason === 'server shutting down').length, JSON.stringify(closes)).toBe(clients.length);
    // Each process drained and exited by itself: none was killed by the supervisor's backstop.
    expect(code, started.stderr.slice(-4000)).toBe(0);
    expect(started.stderr).not.toMatch(/SIGKILL/);
  }, 120_000);

  it('a rolling restart (SIGHUP) closes every client with 1001, and each old process exits by itself', async () => {
    const { started, clients } = await chatRoomOverTwoProcesses('roll');
    // One process at a time: the holder retires while the other still relays to it (the holder's
    // internal endpoint used to wait on those relayed connections, so it never exited by itself
    // and its own clients were cut without a close frame when the supervisor killed it).
    started.proc.kill('SIGHUP');
    const closes = await Promise.all(clients.map((client) => client.closed));
    expect(closes.filter((c) => c.code === 1001 && c.reason === 'server shutting down').length, JSON.stringify(closes)).toBe(clients.length);
    expect(await until(() => /rolling restart done/.test(started.stdout + started.stderr), 60_000), started.stdout.slice(-4000)).toBe(true);
    // Two processes drained and exited (the old ones), none cut by the supervisor's deadline.
    expect((started.stdout + started.stderr).match(/"msg":"drained in \d+ ms"/g)?.length).toBe(2);
    expect((started.stdout + started.stderr).match(/drain deadline/g)).toBeNull();
    const code = await stopNode(started);
    node = null;
    expect(code).toBe(0);
  }, 180_000);
});
