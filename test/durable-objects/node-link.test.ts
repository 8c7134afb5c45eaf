// The internal endpoint between serving processes (src/app/node-link.ts), over real sockets: a
// stranger's request is answered 401 and its connection cut without reading its body; an event
// addressed to another holder identity is answered "not held here" without being delivered; the
// endpoint takes a bounded number of connections.
import net from 'node:net';
import { serialize } from 'node:v8';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeLink, type NodeLink } from '../../src/app/node-link.js';
import { FORWARD_PATH } from '../../src/app/object-placement.js';

let link: NodeLink;
let delivered = 0;
beforeAll(async () => {
  link = await startNodeLink({
    host: '127.0.0.1',
    secret: 's3cret',
    logger: pino({ level: 'silent' }),
    holder: () => 'n/1/current',
    maxConnections: 3,
    receive: async () => {
      delivered++;
      return { result: { value: 'ok' } } as never;
    },
  });
});
afterAll(() => link?.close());

/** Send raw bytes on a connection of its own; resolves with everything read once the server closes it. */
function exchange(bytes: string | Buffer, keepOpen = false): Promise<{ text: string; socket: net.Socket }> {
  const [host, port] = [link.address.slice(0, link.address.lastIndexOf(':')), Number(link.address.slice(link.address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes));
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, socket }));
    if (keepOpen) socket.on('data', () => {});
  });
}

const post = (auth: string, holder: string, body: Buffer) =>
  `POST ${FORWARD_PATH} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${auth}\r\nx-cinder-holder: ${holder}\r\ncontent-length: ${body.length}\r\n\r\n`;

describe('the node link', () => {
  it('answers a stranger 401 and cuts the connection: nothing more is read from it', async () => {
    // A body, then a second request on the same connection: a drained body would leave the
    // connection open for the second, answered too.
    const { text } = await exchange(`POST ${FORWARD_PATH} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer wrong\r\ncontent-length: 10\r\n\r\n0123456789` + `GET / HTTP/1.1\r\nhost: x\r\nauthorization: Bearer wrong\r\nconnection: close\r\n\r\n`);
    expect(text.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 401']);
    expect(text).toContain('not a Cinder node');
  });

  it('answers an event addressed to another identity "not held here" without delivering it', async () => {
    const body = serialize({ event: { kind: 'rpc', method: 'x', args: [] } });
    const before = delivered;
    const { text } = await exchange(post('s3cret', 'n/1/lapsed', body).replace('\r\n\r\n', '\r\nconnection: close\r\n\r\n') + body.toString('latin1'));
    expect(text).toMatch(/^HTTP\/1\.1 409 /);
    expect(delivered - before).toBe(0);
    const again = await exchange(post('s3cret', 'n/1/current', body).replace('\r\n\r\n', '\r\nconnection: close\r\n\r\n') + body.toString('latin1'));
    expect(again.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(delivered - before).toBe(1);
  });

  it('takes at most maxConnections connections', async () => {
    const [host, port] = [link.address.slice(0, link.address.lastIndexOf(':')), Number(link.address.slice(link.address.lastIndexOf(':') + 1))];
    const open: net.Socket[] = [];
    for (let i = 0; i < 3; i++) open.push(await new Promise<net.Socket>((resolve) => { const s = net.connect({ host, port }, () => resolve(s)); }));
    // the fourth is accepted by the kernel and dropped by the server at once
    const { text } = await exchange(`GET / HTTP/1.1\r\nhost: x\r\nauthorization: Bearer s3cret\r\n\r\n`);
    expect(text).toBe('');
    for (const s of open) s.destroy();
  });
});
