// weft/hub connector SDK: one pipeline step's connection to the hub (HubService.Process).
//
// `HubConnector.connect()` opens the stream and keeps it open: on a retryable end it reconnects
// with backoff and resends, in order, every packet the hub has not acknowledged; a terminal
// status (bad registration, unknown step, a newer generation) ends it with ConnectorRefusedError.
// Sending is bounded (`maxUnacked`) and honours the hub's PAUSE/RESUME; receiving is a bounded
// async iterator whose deliveries are acked one by one and acknowledged to the hub cumulatively.
// The stream goes over gRPC (`address`) or, inside the Weft cluster, over the grid (`grid`).

export { HubConnector } from './hub-connector.ts';
export { defaultConnectorConfig } from './config.ts';
export { ConnectorClosedError, ConnectorRefusedError, ConnectorSendQueueFullError } from './errors.ts';
export type { Delivery, HubConnectorStats, PacketInit, SendOptions, SendResult } from './hub-connector.ts';
export type { HubConnectorOptions, ReconnectConfig } from './config.ts';
export type { HubGridTarget } from '../grid/connector-transport.ts';
