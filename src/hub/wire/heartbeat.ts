// Heartbeats keep idle streams alive through proxies and let each side notice a dead peer. A
// heartbeat is a packet with metadata `bubu-heartbeat: "true"` and an empty payload; it is never
// routed as data.

import { create } from '@bufbuild/protobuf';

import { DataPacketSchema, type DataPacket } from '../../gen/transport/v1/hub_pb.ts';

export const HEARTBEAT_METADATA_KEY = 'bubu-heartbeat';

/** True for a heartbeat: the marker set to "true" and no payload fields. */
export function isHeartbeat(packet: DataPacket): boolean {
  if (packet.metadata[HEARTBEAT_METADATA_KEY] !== 'true') return false;
  return packet.payload === undefined || Object.keys(packet.payload).length === 0;
}

/** A fresh heartbeat packet. Make one per stream: a packet shared between sends may be mutated. */
export function newHeartbeatPacket(): DataPacket {
  return create(DataPacketSchema, { metadata: { [HEARTBEAT_METADATA_KEY]: 'true' } });
}
