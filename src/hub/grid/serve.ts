// The hub on the grid: each connector of a step inside the cluster opens one grid stream to the
// hub's node, and the hub serves it as it serves a gRPC call (Hub.accept), with the grid's
// credits as the flow control gRPC's HTTP/2 windows would give.

import { status } from '@grpc/grpc-js';

import { callerFault, type Manager, type StreamHandlerContext } from '../../grid/index.ts';
import { ConfigError, errorMessage } from '../../internal/errors.ts';
import type { Hub } from '../hub.ts';
import { DEFAULT_HUB_GRID_WINDOW, HUB_GRID_HANDLER } from './protocol.ts';
import { decodeGridRegistration } from './registration.ts';
import { GridConnectorSession, type SessionCounters } from './session.ts';
import { HubStatusError } from './status.ts';

export interface HubGridServerOptions {
  /** Requests from one connector buffered on the hub's node (the stream's input window). Default 32. */
  readonly window?: number;
}

export interface HubGridServerStats {
  /** Streams opened by connectors. */
  readonly opened: number;
  /** Streams being served now. */
  readonly active: number;
  /** Streams refused before the hub saw them: a registration payload that is not a valid map. */
  readonly badRegistrations: number;
  /** Streams ended with a status (by the hub, or here). */
  readonly failed: number;
  /** Requests over HUB_MAX_MESSAGE_BYTES (the stream ends RESOURCE_EXHAUSTED). */
  readonly oversizeRequests: number;
  /** Requests that are not a ProcessRequest (the hub ends the stream INVALID_ARGUMENT). */
  readonly undecodableRequests: number;
}

export interface HubGridServer {
  stats(): HubGridServerStats;
}

/** Serves `hub` to connectors on `manager`'s grid, on reserved handler id 20 (HUB_GRID_HANDLER). */
export function serveHubOnGrid(
  hub: Hub,
  manager: Manager,
  options: HubGridServerOptions = {},
): HubGridServer {
  const window = options.window ?? DEFAULT_HUB_GRID_WINDOW;
  if (!Number.isSafeInteger(window) || window <= 0) {
    throw new ConfigError('hubGrid.window', `must be a positive integer, got ${String(window)}`);
  }
  const counts = { opened: 0, active: 0, badRegistrations: 0, failed: 0 };
  const counters: SessionCounters = { oversizeRequests: 0, undecodableRequests: 0 };

  const handle = async (context: StreamHandlerContext): Promise<void> => {
    counts.opened++;
    let metadata;
    try {
      metadata = decodeGridRegistration(context.initial);
    } catch (error) {
      counts.badRegistrations++;
      counts.failed++;
      throw callerFault(new HubStatusError(status.INVALID_ARGUMENT, errorMessage(error)));
    }
    const session = new GridConnectorSession(metadata, context, counters);
    counts.active++;
    try {
      // The hub may still be inside a request when it ends the stream: the stream ends at
      // once (`finished`), and the hub's loop finishes on its own.
      hub.accept(session).then(
        () => {
          // The connector's input ended or the hub is done with it: end once the queue is sent.
          session.drainAndFinish();
        },
        () => {
          session.fail(status.INTERNAL, 'internal error');
        },
      );
      await session.finished;
    } finally {
      counts.active--;
    }
    const failure = session.failure;
    if (failure !== undefined) {
      counts.failed++;
      // The hub counted and, where it is the hub's fault, logged it: the grid need not log it again.
      throw callerFault(new HubStatusError(failure.code, failure.details));
    }
  };

  manager.registerStream(HUB_GRID_HANDLER, { handle, inCapacity: window }, { reserved: true });
  return {
    stats: () => ({ ...counts, ...counters }),
  };
}
