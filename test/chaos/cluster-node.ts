// A Weft node of the cluster crash test, run as its own process so that it can be killed with
// SIGKILL: `node --import tsx test/chaos/cluster-node.ts '<ClusterNodeConfig as JSON>'`.
//
// A whole node (startNode: grid, membership, HTTP ingress at /v1/ingress) whose runtime keeps
// its state in the test's PostgreSQL schema, runs the workload of chaos-workload.ts and sends
// its egress `chaos/out` to JetStream. It prints {"port": n} on stdout once it serves. It runs
// until killed, until SIGTERM (a graceful stop: it leaves the cluster), or until its stdin
// closes (the test is gone). Its logs go to stderr as JSON lines.

import { connect } from 'nats';

import { resolveNodeConfig } from '../../src/node/config.ts';
import { startNode } from '../../src/node/index.ts';
import { JetStreamSink } from '../../src/runtime/index.ts';
import { counterFunctions, EGRESS_ID, type ReadyLine } from './chaos-workload.ts';

export interface ClusterNodeConfig {
  readonly name: string;
  readonly port: number;
  readonly seeds: readonly string[];
  readonly dataDir: string;
  readonly secret: string;
  readonly postgresUrl: string;
  readonly schema: string;
  readonly natsUrl: string;
  readonly subject: string;
  readonly msgIdPrefix: string;
}

async function main(): Promise<void> {
  const text = process.argv[2];
  if (text === undefined) throw new Error('usage: cluster-node.ts <config json>');
  const config = JSON.parse(text) as ClusterNodeConfig;
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();

  const nats = await connect({ servers: config.natsUrl });
  const sink = new JetStreamSink({
    connection: nats,
    subject: config.subject,
    msgIdPrefix: config.msgIdPrefix,
  });
  const node = await startNode(
    resolveNodeConfig({
      name: config.name,
      listen: { host: '127.0.0.1', port: config.port },
      cluster: { secret: config.secret, seeds: config.seeds },
      dataDir: config.dataDir,
      runtime: { postgres: config.postgresUrl, postgresSchema: config.schema },
      log: { level: 'warn' },
    }),
    { functions: counterFunctions(), egress: { [EGRESS_ID]: sink }, logDestination: process.stderr },
  );
  process.once('SIGTERM', () => {
    void node.close().finally(() => process.exit(0));
  });
  const ready: ReadyLine = { port: node.port };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${JSON.stringify({ level: 'error', msg: 'the cluster node failed to start', error: String(error) })}\n`,
  );
  process.exit(1);
});
