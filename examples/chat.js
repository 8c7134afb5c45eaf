// A chat room over WebSockets: every client connected to this worker's isolate sees the others'
// messages. GET / answers a small page that connects; ws://chat.localhost:8787/?name=you joins.
// (One isolate holds the room: a room that must survive restarts and span isolates is a Durable
// Object's job.)
const members = new Map();

function broadcast(from, text) {
  const line = JSON.stringify({ from, text, at: Date.now() });
  for (const [socket] of members) {
    try {
      socket.send(line);
    } catch {
      members.delete(socket);
    }
  }
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>chat</title>
<pre id="log"></pre><form id="f"><input id="m" autofocus></form>
<script>
const ws = new WebSocket(location.href.replace('http', 'ws') + '?name=' + encodeURIComponent(prompt('name?') || 'anon'));
ws.onmessage = (e) => { const m = JSON.parse(e.data); log.textContent += m.from + ': ' + m.text + '\\n'; };
f.onsubmit = (e) => { e.preventDefault(); ws.send(m.value); m.value = ''; };
</script>`;

export default {
  fetch(request) {
    if (request.headers.get('upgrade') !== 'websocket') {
      return new Response(PAGE, { headers: { 'content-type': 'text/html; charset=utf-8' } });
    }
    const name = new URL(request.url).searchParams.get('name') || 'anon';
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    members.set(server, name);
    server.addEventListener('message', (event) => broadcast(name, String(event.data).slice(0, 1000)));
    server.addEventListener('close', () => {
      members.delete(server);
      broadcast('room', `${name} left`);
    });
    broadcast('room', `${name} joined (${members.size} here)`);
    return new Response(null, { status: 101, webSocket: client });
  },
};
