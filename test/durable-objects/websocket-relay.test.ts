// A WebSocket answered by a Durable Object held in another serving process: `cinder serve
// --processes 2` without Redis, the chat room of hibernation.test.ts, six real `ws` clients on
// connections of their own (node:cluster hands each to the next process). The process a client
// landed on relays its frames to the holder's internal endpoint when it does not hold the room, so
// every client sees every other client's messages and the room sees each client's close code and
// reason; when the holding process is killed with -9,
// the relayed clients are closed with 1011 (not left hanging), and the room works again through
// the process that takes it over.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aliveChildPids, deploy, supervisorLines, get, startNode, stopNode, until, type Node } from '../scale/helpers.js';
import { connect, type Client } from '../websocket/helpers.js';
import { CHAT, CHAT_METADATA } from './chat-room.js';

let node: Node;

beforeAll(async () => {
  // debug: the forwarding process logs each relayed socket with its pid
  node = await startNode({ processes: 2, args: ['--object-lease-ms', '1500'], env: { CINDER_LOG_LEVEL: 'debug' } });
  const deployed = await deploy(node, 'chat', CHAT, CHAT_METADATA);
  expect(deployed.status, deployed.text).toBe(201);
}, 120_000);

afterAll(async () => {
  if (node) await stopNode(node);
});

const port = () => Number(new URL(node.url).port);
const texts = (client: Client) => client.messages.map((m) => JSON.parse(String(m))).filter((m) => m.type === 'message').map((m) => `${m.from}: ${m.text}`);
/** pids of the processes that relayed a socket to the room's holder, one entry per socket */
const relayedBy = () => [...(node.stdout + node.stderr).matchAll(/"pid":(\d+)[^\n]*Durable Object WebSocket relayed/g)].map((m) => Number(m[1]));

describe('a WebSocket to a Durable Object held by another process', () => {
  it('six clients over both processes see every message and close with their own codes; the holder killed with -9 closes the relayed ones with 1011', async () => {
    const users = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'];
    const clients: Client[] = [];
    // One after another: each a new connection, so the two processes take turns.
    for (const user of users) {
      const client = await connect(port(), 'chat', `/?room=relay&user=${user}`);
      await client.received(1);
      expect(JSON.parse(String(client.messages[0]))).toMatchObject({ type: 'welcome', user });
      clients.push(client);
    }
    // Both processes took connections: some were relayed (by one process, the one not holding
    // the room), and some went to the holder itself.
    const relayers = relayedBy();
    expect(relayers.length, node.stdout.slice(-3000)).toBeGreaterThan(0);
    expect(relayers.length).toBeLessThan(users.length);
    expect(new Set(relayers).size).toBe(1);
    // The holder: the serving process alive now that is not the relayer (a process replaced since
    // the node started is in the supervisor's log but gone; a full CI run once picked one).
    const holders = aliveChildPids(node).filter((pid) => pid !== relayers[0]);
    expect(holders.length, supervisorLines(node)).toBe(1);
    const [holder] = holders;

    clients.forEach((client, i) => client.send(`hello from ${users[i]}`));
    await Promise.all(clients.map((client) => client.received(1 + users.length)));
    const expected = users.map((user) => `${user}: hello from ${user}`).sort();
    for (const client of clients) expect(texts(client).sort()).toEqual(expected);

    // Binary frames cross too (the room broadcasts what it got as text: the message's string form).
    clients[0].ws.send(Buffer.from([1, 2, 3]));
    await Promise.all(clients.map((client) => client.received(2 + users.length)));

    // Each client leaves with a code and reason of its own: the room's webSocketClose records
    // each as sent, relayed or not.
    clients.forEach((client, i) => client.ws.close(4000 + i, `bye ${users[i]}`));
    expect(await Promise.all(clients.map((client) => client.closed))).toEqual(users.map((user, i) => ({ code: 4000 + i, reason: `bye ${user}` })));
    let recorded: { user: string; code: number; reason: string; wasClean: boolean }[] = [];
    expect(
      await until(async () => {
        const res = await get(node, 'chat', '/stats?room=relay', false);
        recorded = JSON.parse(res.text).closes;
        return recorded.length === users.length;
      }, 10_000),
    ).toBe(true);
    expect(recorded.map(({ user, code, reason, wasClean }) => ({ user, code, reason, wasClean })).sort((x, y) => x.code - y.code)).toEqual(users.map((user, i) => ({ user, code: 4000 + i, reason: `bye ${user}`, wasClean: true })));

    // Six more, then the holder dies: its own clients lose their connection (1006); the relayed
    // ones are closed by the process they are connected to, with 1011.
    const relayedBefore = relayedBy().length;
    const second: Client[] = [];
    for (const user of users) {
      const client = await connect(port(), 'chat', `/?room=relay&user=${user}-again`);
      await client.received(1);
      second.push(client);
    }
    const relayedNow = relayedBy().length - relayedBefore;
    expect(relayedNow).toBeGreaterThan(0);
    expect(relayedNow).toBeLessThan(users.length);
    clients.splice(0, clients.length, ...second);
    process.kill(holder, 'SIGKILL');
    const closes = await Promise.all(clients.map((client) => client.closed));
    const codes = closes.map((c) => c.code).sort();
    expect(codes.filter((code) => code === 1011).length).toBe(relayedNow);
    expect(codes.filter((code) => code === 1006).length).toBe(users.length - relayedNow);

    // The room comes back (taken over from its file once the lease ran out): a new client joins
    // and hears itself, with the history written before.
    let again: Client | null = null;
    expect(
      await until(async () => {
        try {
          again = await connect(port(), 'chat', '/?room=relay&user=late');
          return true;
        } catch {
          return false;
        }
      }, 30_000, 200),
      node.stderr.slice(-3000),
    ).toBe(true);
    await again!.received(1);
    const welcome = JSON.parse(String(again!.messages[0]));
    expect(welcome.history.length).toBe(users.length + 1);
    again!.send('back');
    await again!.received(2);
    expect(texts(again!)).toEqual(['late: back']);
    again!.ws.close();
    await again!.closed;
  }, 120_000);
});
