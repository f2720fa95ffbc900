// What carries one connector's stream to the hub: gRPC (grpc-transport.ts) or a grid stream
// (../grid/connector-transport.ts). The connector's logic (sequencing, resend, acks, PAUSE) sees
// only this: open a call with the registration, write requests, read responses, and one end
// with a gRPC status, whatever carried it.

import { status } from '@grpc/grpc-js';

import type { ProcessRequest, ProcessResponse } from '../../gen/transport/v1/hub_pb.ts';
import {
  CONNECTOR_GENERATION_KEY,
  CURRENT_STEP_ID_KEY,
  STORYRUN_NAME_KEY,
  STORYRUN_NAMESPACE_KEY,
} from '../wire/registration.ts';

/** Metadata naming the story of a run the hub was not told of (the hub's STORY_NAME_KEY). */
export const STORY_NAME_KEY = 'story-name';

/** Statuses another attempt cannot change: the connector ends with a ConnectorRefusedError. */
export const TERMINAL_STATUSES: ReadonlySet<status> = new Set([
  status.INVALID_ARGUMENT,
  status.FAILED_PRECONDITION,
  status.NOT_FOUND,
  status.PERMISSION_DENIED,
  status.UNAUTHENTICATED,
  status.UNIMPLEMENTED,
]);

/** Who the connector is, as the hub reads it when the stream opens. */
export interface ConnectorRegistration {
  readonly namespace: string;
  readonly run: string;
  readonly step: string;
  readonly generation: number | undefined;
  readonly story: string | undefined;
}

/** How a call ended: OK for a clean end by the hub, otherwise the status it (or the transport) gave. */
export interface CallEnd {
  readonly code: status;
  readonly details: string;
}

/** What a transport reports about one call; never called synchronously from `open`. */
export interface HubCallListener {
  onResponse(response: ProcessResponse): void;
  /** Called exactly once, also after `cancel()`. */
  onEnd(end: CallEnd): void;
}

/** One open stream to the hub. */
export interface HubCall {
  /** Writes in order; `onWritten` runs once the transport took it (not on failure). */
  write(request: ProcessRequest, onWritten?: () => void): void;
  /** Half-closes once what was written has gone out; the hub then ends the call. */
  end(): void;
  /** Abandons the call; `onEnd` follows (CANCELLED). */
  cancel(): void;
  /** Stops reading responses (the transport's flow control then holds the hub). */
  pause(): void;
  resume(): void;
}

export interface HubTransport {
  open(registration: ConnectorRegistration, listener: HubCallListener): HubCall;
  /** Releases what the transport holds (a gRPC channel); calls are already ended. */
  close(): void;
}

/** The registration as key/value pairs: gRPC metadata entries, or the grid's registration map. */
export function registrationEntries(registration: ConnectorRegistration): [string, string][] {
  const entries: [string, string][] = [
    [STORYRUN_NAME_KEY, registration.run],
    [STORYRUN_NAMESPACE_KEY, registration.namespace],
    [CURRENT_STEP_ID_KEY, registration.step],
  ];
  if (registration.generation !== undefined) {
    entries.push([CONNECTOR_GENERATION_KEY, String(registration.generation)]);
  }
  if (registration.story !== undefined) entries.push([STORY_NAME_KEY, registration.story]);
  return entries;
}
