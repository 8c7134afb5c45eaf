// The guest API as a worker sees it: WebSocketPair's shape, the errors workerd gives, a pair whose
// ends both stay in the isolate, binaryType, on<event> handlers, and the add-on installed only for
// workers that mention WebSockets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { connect } from './helpers.js';

const SHAPE = `export default { fetch() {
  const pair = new WebSocketPair();
  const values = Object.values(pair);
  const [client, server] = values;
  const initial = [client.readyState, server.readyState];
  const errors = {};
  const attempt = (name, fn) => { try { fn(); errors[name] = 'no error' } catch (e) { errors[name] = e.constructor.name + ': ' + e.message } };
  attempt('sendBeforeAccept', () => server.send('x'));
  attempt('construct', () => new WebSocket('wss://example.com'));
  server.accept();
  attempt('badCode', () => server.close(1006));
  attempt('longReason', () => server.close(1000, 'x'.repeat(124)));
  attempt('status101WithoutSocket', () => new Response(null, { status: 101 }));
  attempt('socketWithOtherStatus', () => new Response(null, { status: 200, webSocket: client }));
  attempt('notASocket', () => new Response(null, { status: 101, webSocket: {} }));
  return Response.json({
    count: values.length,
    zeroIsClient: pair[0] === client && pair[1] === server,
    readyState: [...initial, WebSocket.OPEN, server.CLOSED],
    afterClose: server.readyState,
    isEventTarget: server instanceof EventTarget,
    tag: Object.prototype.toString.call(server),
    binaryType: server.binaryType,
    response101: new Response(null, { status: 101, webSocket: client }).webSocket === client,
    plainResponse: new Response('x').webSocket,
    onmessage: typeof server.onmessage,
    errors,
  });
} }`;

const LOCAL = `export default { async fetch() {
  const [a, b] = Object.values(new WebSocketPair());
  const seen = [];
  a.accept();
  b.accept();
  const done = new Promise((resolve) => a.addEventListener('close', (e) => resolve(e.code + ' ' + e.reason)));
  a.addEventListener('message', (e) => seen.push(typeof e.data === 'string' ? e.data : 'bytes:' + new Uint8Array(e.data).join(',')));
  b.send('one');
  b.send(new Uint16Array([258]));
  b.close(3001, 'local close');
  return Response.json({ seen, close: await done, order: seen.length });
} }`;

const BLOB = `export default { fetch() {
  const [client, server] = Object.values(new WebSocketPair());
  server.accept();
  server.binaryType = 'blob';
  server.binaryType = 'nonsense';
  server.addEventListener('message', async (event) => {
    // an async listener: its invocation stays open until it settles
    const text = event.data instanceof Blob ? 'blob ' + event.data.size + ' ' + (await event.data.text()) : 'not a blob';
    await new Promise((r) => setTimeout(r, 5));
    server.send(text + ' (' + server.binaryType + ')');
  });
  return new Response(null, { status: 101, webSocket: client });
} }`;

describe('the WebSocket guest API', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ shape: SHAPE, local: LOCAL, blob: BLOB, none: `export default { fetch() { return new Response(typeof globalThis['WebSock' + 'etPair']) } }` });
  });
  afterAll(() => server.close());

  it('has the shape and the errors workerd gives', async () => {
    const res = await server.request('shape');
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text);
    expect(body).toMatchObject({ count: 2, zeroIsClient: true, readyState: [1, 1, 1, 3], afterClose: 2, isEventTarget: true, tag: '[object WebSocket]', binaryType: 'arraybuffer', response101: true, plainResponse: null });
    expect(body.errors.sendBeforeAccept).toBe('TypeError: You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages.');
    expect(body.errors.construct).toMatch(/^TypeError: new WebSocket\("wss:\/\/example.com"\) is not supported by Cinder/);
    expect(body.errors.badCode).toBe('DOMException: Invalid WebSocket close code: 1006.');
    // as workerd: accepted (the reason is cut to the 123 bytes a close frame carries)
    expect(body.errors.longReason).toBe('no error');
    expect(body.onmessage).toBe('undefined');
    expect(body.errors.status101WithoutSocket).toMatch(/^RangeError: Responses may only be constructed with status codes in the range 200 to 599/);
    expect(body.errors.socketWithOtherStatus).toBe('RangeError: Responses with a webSocket must have status code 101.');
    expect(body.errors.notASocket).toMatch(/^TypeError: .*webSocket is not of type 'WebSocket'/);
  });

  it('passes messages and the close between two local ends, in order', async () => {
    const res = await server.request('local');
    expect(JSON.parse(res.text)).toEqual({ seen: ['one', 'bytes:2,1'], close: '3001 local close', order: 2 });
  });

  it('delivers binary messages as a Blob when binaryType is "blob"; async listeners finish', async () => {
    const client = await connect(server.port, 'blob');
    client.send(Buffer.from('abc'));
    expect(await client.received(1)).toEqual(['blob 3 abc (blob)']);
    client.ws.close();
  });

  it('is installed only in workers that mention it', async () => {
    expect((await server.request('none')).text).toBe('undefined');
  });
});
