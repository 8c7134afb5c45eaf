// A WebSocket probe for the differential harness: the same script of messages goes to Cinder and
// to workerd over a real socket, and the transcripts must agree. Each message is a command.
function attempt(fn) {
  try {
    const value = fn();
    return value === undefined ? 'ok' : value;
  } catch (e) {
    return `${e.constructor.name}: ${e.message}`;
  }
}

function shape() {
  const pair = new WebSocketPair();
  const [client, server] = Object.values(pair);
  return {
    keys: Object.keys(pair),
    zeroIsClient: pair[0] === client,
    readyState: [client.readyState, server.readyState],
    constants: [WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED, server.OPEN],
    eventTarget: server instanceof EventTarget,
    tag: Object.prototype.toString.call(server),
    url: server.url,
    sendBeforeAccept: attempt(() => server.send('x')),
    closeBeforeAccept: attempt(() => server.close()),
    badCode: attempt(() => (server.accept(), server.close(1006))),
    longReason: attempt(() => server.close(1000, 'x'.repeat(124))),
    status101: attempt(() => new Response(null, { status: 101 }).status),
    withSocket: attempt(() => new Response(null, { status: 101, webSocket: client }).status),
    plainWebSocket: new Response('x').webSocket,
    events: [typeof MessageEvent, typeof CloseEvent],
  };
}

let lastClose = 'none';

export default {
  fetch(request) {
    if (request.headers.get('upgrade') !== 'websocket') return new Response('expected a websocket', { status: 426 });
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.send('hello before the response');
    server.addEventListener('message', (event) => {
      const data = event.data;
      if (typeof data !== 'string') {
        server.send(`binary ${Object.prototype.toString.call(data)} ${data.byteLength}`);
        server.send(new Uint8Array(data).reverse());
      } else if (data === 'shape') server.send(JSON.stringify(shape()));
      else if (data === 'state') server.send(JSON.stringify({ readyState: server.readyState, binaryType: server.binaryType, onmessage: server.onmessage }));
      else if (data === 'close') server.close(4000, 'asked to close');
      else if (data === 'lastclose') server.send(lastClose);
      else server.send(`echo:${data}`);
    });
    server.addEventListener('close', (event) => {
      lastClose = `${event.type} ${event.code} ${event.reason} ${event.wasClean} readyState ${server.readyState}`;
      server.close(1000, 'answered'); // after the other end's close: no effect, no error
    });
    return new Response(null, { status: 101, webSocket: client, headers: { 'x-probe': 'yes' } });
  },
};
