// A three-step story on Weft's hub, in one process: a hub on grid node A serving gRPC and grid
// connectors; `ingest` and `publish` are TypeScript connectors over gRPC (as a step in any
// language would be), `shout` runs inside the cluster on grid node B and reaches the hub over a
// grid stream. Lines go in at `ingest`, come out shouted at `publish`, and each is acknowledged
// back to `ingest` once `publish` has acked it.
//
// From the repository root: npm run example:pipeline

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { Manager } from 'weft/grid';

import { type Delivery, Hub, HubConnector, loadStory, serveHubOnGrid } from 'weft/hub';

const LINES = ['the hub buffers', 'acks flow back', 'generations hand off', 'nothing is lost'];
const RUN = { namespace: 'demo', run: 'run-1', story: 'shout' } as const;

function textOf(delivery: Delivery): string {
  const frame = delivery.packet.frame;
  return frame.case === 'binary' ? Buffer.from(frame.value.payload).toString() : '';
}

function binary(text: string): { frame: { case: 'binary'; value: { payload: Buffer; mimeType: string } } } {
  return { frame: { case: 'binary', value: { payload: Buffer.from(text), mimeType: 'text/plain' } } };
}

async function listen(): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

// Two grid nodes: A carries the hub, B runs the in-cluster step.
const [a, b] = [await listen(), await listen()];
const hosts = [a.url, b.url];
const auth = { secret: 'a shared secret of 16 bytes or more' };
const nodeA = new Manager({ local: a.url, hosts, auth });
const nodeB = new Manager({ local: b.url, hosts, auth });

const hub = new Hub({ stories: [await loadStory(path.join(import.meta.dirname, 'story.yaml'))] });
serveHubOnGrid(hub, nodeA);
nodeA.attach(a.server);
nodeB.attach(b.server);
const port = await hub.listen({ port: 0 });
const address = `127.0.0.1:${port}`;
console.log(`hub: gRPC on ${address}, grid on ${a.url}`);

// `publish` (gRPC): prints what arrives and acks it.
const publish = await HubConnector.connect({ address, ...RUN, step: 'publish', generation: 1 });
const published: string[] = [];
const publishing = (async () => {
  for await (const delivery of publish.received()) {
    published.push(textOf(delivery));
    console.log(`publish: ${textOf(delivery)}`);
    delivery.ack();
    if (published.length === LINES.length) return;
  }
})();

// `shout` (in the cluster, over the grid from node B): forwards each line shouted, then acks it.
const shout = await HubConnector.connect({
  grid: { manager: nodeB, node: a.url },
  ...RUN,
  step: 'shout',
  generation: 1,
});
const shouting = (async () => {
  let seen = 0;
  for await (const delivery of shout.received()) {
    await shout.send(binary(`${textOf(delivery).toUpperCase()}!`));
    delivery.ack();
    if (++seen === LINES.length) return;
  }
})();

// `ingest` (gRPC): sends the lines; each send is held until the hub acknowledges it.
const ingest = await HubConnector.connect({ address, ...RUN, step: 'ingest', generation: 1 });
for (const line of LINES) {
  const { sequence } = await ingest.send(binary(line));
  console.log(`ingest: sent #${sequence} "${line}"`);
}
await Promise.all([publishing, shouting]);
await ingest.drained();
console.log(`ingest: all ${LINES.length} acknowledged end to end (unacked: ${ingest.stats().unacked})`);

await Promise.all([ingest.close(), shout.close(), publish.close()]);
await hub.close();
await Promise.all([nodeA.close(), nodeB.close()]);
a.server.close();
b.server.close();
console.log('closed');
