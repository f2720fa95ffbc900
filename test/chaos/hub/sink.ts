// The sink step of the hub chaos test, one process per generation:
// `node --import tsx test/chaos/hub/sink.ts '<ConnectorConfig as JSON>'`.
//
// Appends a record line per delivery to the shared record file (see workload.ts) and acks the
// deliveries only after the line is written: a kill loses nothing acked. Lines go out in batches,
// one write each, at the latest when the event loop turns. Exits when the hub refuses it (a newer
// generation took over) or its stdin closes.

import { closeSync, openSync, writeSync } from 'node:fs';

import { ConnectorRefusedError, HubConnector, type Delivery } from '../../../src/hub/connector/index.ts';
import {
  connectorOptions,
  reportStats,
  exitWithParent,
  parseConfig,
  partitionIndex,
  payloadOf,
  recordLine,
} from './workload.ts';

const MAX_BATCH = 2000;

exitWithParent();
const config = parseConfig(process.argv[2]);
// Appends are atomic per write: generations overlapping in a cutover never interleave a line.
const fd = openSync(config.file, 'a');
const connector = await HubConnector.connect(connectorOptions(config, 'sink'));
reportStats(`sink generation ${config.generation}`, connector);

let batch: Delivery[] = [];
let scheduled = false;

function writeBatch(): void {
  scheduled = false;
  if (batch.length === 0) return;
  const taken = batch;
  batch = [];
  const ms = Date.now();
  let lines = '';
  for (const delivery of taken) {
    lines += recordLine(
      ms,
      partitionIndex(delivery.partition),
      payloadOf(delivery.packet),
      delivery.redelivered,
    );
  }
  writeSync(fd, lines);
  for (const delivery of taken) delivery.ack();
}

try {
  for await (const delivery of connector.received()) {
    batch.push(delivery);
    if (batch.length >= MAX_BATCH) writeBatch();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(writeBatch);
    }
  }
} catch (error) {
  if (!(error instanceof ConnectorRefusedError)) throw error;
  process.stderr.write(`sink generation ${config.generation}: ${error.message}\n`);
}
writeBatch();
closeSync(fd);
process.exit(0);
