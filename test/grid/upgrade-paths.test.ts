// An upgrade request whose target the URL parser refuses (`//`, `/\`) is answered 400 and the
// node carries on: a listener that throws would take the whole process down.

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';

import { Manager } from '../../src/grid/manager.ts';

async function rawUpgrade(port: number, target: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(
    `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  let answer = '';
  for await (const chunk of socket) answer += String(chunk);
  return answer;
}

test(
  'an upgrade to a target the URL parser refuses gets 400, and the node serves on',
  { timeout: 15_000 },
  async (t) => {
    const server = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const url = `http://127.0.0.1:${port}`;
    const grid = new Manager({ local: url, hosts: [url], auth: { secret: 'an upgrade paths secret' } });
    grid.attach(server);
    t.after(async () => {
      await grid.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    for (const target of ['//', '/\\']) {
      assert.match(await rawUpgrade(port, target), /^HTTP\/1\.1 400 /, target);
    }
    assert.equal(await (await fetch(`${url}/`)).text(), 'ok');
  },
);
