// A process full of hostile grid clients, for the handshake stress test. It keeps `count`
// sockets open against a node, a third of each kind, and opens a new one whenever one is
// destroyed:
//   silent    upgrades on the grid path and never says a word
//   dribbling sends its upgrade request one byte at a time and never finishes it
//   garbage   upgrades, then answers the Challenge with bytes that are no Connect
// Sources are spread over 127.0.0.2 … 127.0.0.<1 + sources>. It prints one JSON line of
// counters every 100 ms and stops when its standard input closes.
//
// Usage: node --import tsx test/grid/hostile-clients.ts <port> <count> <sources>

import net from 'node:net';

import WebSocket from 'ws';

const [port, count, sources] = process.argv.slice(2).map(Number) as [number, number, number];
const GRID = '/weft/grid/v3';
const opened = { silent: 0, dribbling: 0, garbage: 0 };
const destroyed = { silent: 0, dribbling: 0, garbage: 0 };
let live = 0;
let stopping = false;
let next = 0;

function source(): string {
  next += 1;
  return `127.0.0.${2 + (next % sources)}`;
}

/** Opens another socket of `kind` once this one is gone, 250 ms later so the loop never spins. */
function replaced(kind: keyof typeof opened): void {
  live -= 1;
  destroyed[kind] += 1;
  if (!stopping) {
    setTimeout(() => {
      open(kind);
    }, 250);
  }
}

function open(kind: keyof typeof opened): void {
  if (stopping) return;
  live += 1;
  opened[kind] += 1;
  if (kind === 'dribbling') {
    const request = `GET ${GRID} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nX-Pad: ${'a'.repeat(8_000)}`;
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: source() });
    let sent = 0;
    const timer = setInterval(() => {
      if (sent < request.length) socket.write(request[sent++] ?? '');
    }, 200);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearInterval(timer);
      replaced(kind);
    });
    return;
  }
  const ws = new WebSocket(`ws://127.0.0.1:${port}${GRID}`, {
    localAddress: source(),
    perMessageDeflate: false,
  });
  ws.on('error', () => undefined);
  if (kind === 'garbage') {
    ws.once('message', () => {
      ws.send(Buffer.from('\u0097 this is not a Connect frame'));
    });
  }
  ws.once('close', () => {
    replaced(kind);
  });
}

for (let i = 0; i < count; i++)
  open((['silent', 'dribbling', 'garbage'] as const)[i % 3] as keyof typeof opened);

const report = setInterval(() => {
  process.stdout.write(`${JSON.stringify({ live, opened, destroyed })}\n`);
}, 100);

process.stdin.resume();
process.stdin.once('end', () => {
  stopping = true;
  clearInterval(report);
  process.exit(0);
});
