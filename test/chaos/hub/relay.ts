// The relay step of the hub chaos test, one process per generation:
// `node --import tsx test/chaos/hub/relay.ts '<ConnectorConfig as JSON>'`.
//
// Forwards each delivery (same partition, same n) and acks it only once the hub has acknowledged
// the forwarded copy: until then the copy lives only in this process, and a relay killed after
// acking its input but before the hub took its output would lose the packet. A delivery flagged
// redelivered is forwarded marked upstreamReplay, so the sink can tell the copy it may cause.
// Exits when the hub refuses it (a newer generation took over) or its stdin closes.

import { ConnectorRefusedError, HubConnector, type Delivery } from '../../../src/hub/connector/index.ts';
import {
  connectorOptions,
  reportStats,
  exitWithParent,
  packetOf,
  parseConfig,
  payloadOf,
} from './workload.ts';

exitWithParent();
const config = parseConfig(process.argv[2]);
const connector = await HubConnector.connect(connectorOptions(config, 'relay'));
reportStats(`relay generation ${config.generation}`, connector);

const forwarded: Delivery[] = [];
let acking = false;

/** Acks what was forwarded, each batch once the hub acknowledged everything sent so far. */
async function ackForwarded(): Promise<void> {
  if (acking) return;
  acking = true;
  try {
    while (forwarded.length > 0) {
      const batch = forwarded.splice(0);
      await connector.drained();
      for (const delivery of batch) delivery.ack();
    }
  } finally {
    acking = false;
  }
}

try {
  for await (const delivery of connector.received()) {
    const payload = payloadOf(delivery.packet);
    const sent = connector.send(
      packetOf({ ...payload, upstreamReplay: payload.upstreamReplay || delivery.redelivered }),
      { partition: delivery.partition },
    );
    sent.catch(() => undefined);
    forwarded.push(delivery);
    ackForwarded().catch(() => undefined);
  }
} catch (error) {
  if (!(error instanceof ConnectorRefusedError)) throw error;
  process.stderr.write(`relay generation ${config.generation}: ${error.message}\n`);
}
process.exit(0);
