// Cumulative acks as the wire carries them: the unpartitioned ack in `ack`, every other
// partition's in `partition_acks`. The hub (to a producer) and the connector (to the hub) both
// send them this way.

import { create } from '@bufbuild/protobuf';

import {
  type FlowControl,
  FlowControlSchema,
  PartitionAckSchema,
} from '../../gen/transport/v1/transport_pb.ts';

/** A FlowControl carrying `acks` (partition → highest acked sequence), and `extra` fields. */
export function ackFlow(
  acks: ReadonlyMap<string, bigint>,
  extra: { creditsMessages?: number } = {},
): FlowControl {
  return create(FlowControlSchema, {
    ack: acks.get('') ?? 0n,
    partitionAcks: [...acks]
      .filter(([partition]) => partition !== '')
      .map(([partition, ack]) => create(PartitionAckSchema, { partition, ack })),
    ...extra,
  });
}
